// The outbox: rows written in the same transaction as the change that causes
// them (a job to run, a webhook to send), handed to BullMQ by the relay.
import { sql, type Transaction } from 'kysely'
import type { Db } from './index.js'
import type { Database, NewOutboxRow } from './schema.js'

/** NOTIFY channel that wakes the relay at commit. */
export const OUTBOX_CHANNEL = 'landlord_outbox'

export async function writeOutbox(trx: Transaction<Database>, rows: NewOutboxRow[]): Promise<void> {
  if (rows.length === 0) return
  await trx
    .insertInto('outbox')
    .values(rows.map((r) => ({ ...r, payload: JSON.stringify(r.payload) })))
    .execute()
  // Delivered at commit: wakes the relay without waiting for its next poll.
  await sql`SELECT pg_notify(${OUTBOX_CHANNEL}, '')`.execute(trx)
}

/** The oldest rows not yet relayed, locked; rows another relay holds are skipped. */
export async function claimUnrelayed(trx: Transaction<Database>, limit: number) {
  return trx.selectFrom('outbox').selectAll().where('relayed_at', 'is', null).orderBy('seq').limit(limit).forUpdate().skipLocked().execute()
}

export async function markRelayed(trx: Transaction<Database>, ids: string[]): Promise<void> {
  if (ids.length === 0) return
  await trx.updateTable('outbox').set({ relayed_at: sql<Date>`now()` }).where('id', 'in', ids).execute()
}

/** The job rows a tenant's current version queued, newest first. */
export async function jobsOfVersion(db: Db, tenantId: string, version: number) {
  return db
    .selectFrom('outbox')
    .select(['id', 'name', 'relayed_at'])
    .where('tenant_id', '=', tenantId)
    .where('kind', '=', 'job')
    .where(sql<boolean>`(payload->>'version')::int = ${version}`)
    .orderBy('seq', 'desc')
    .execute()
}

/** Deletes up to 1000 relayed rows older than `cutoff` that no delivery refers to. */
export async function pruneOutbox(db: Db, cutoff: Date): Promise<number> {
  const r = await sql`
    DELETE FROM outbox WHERE id IN (
      SELECT o.id FROM outbox o
       WHERE o.relayed_at IS NOT NULL AND o.created_at < ${cutoff}
         AND (o.kind <> 'webhook' OR o.fanned_out_at IS NOT NULL)
         AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = o.id)
       LIMIT 1000)`.execute(db)
  return Number(r.numAffectedRows ?? 0n)
}

/** The latest fleet-migration job row written for one tenant of a run. */
export async function lastFleetJob(db: Db, runId: string, tenantId: string) {
  return db
    .selectFrom('outbox')
    .select(['id', 'relayed_at'])
    .where('tenant_id', '=', tenantId)
    .where('kind', '=', 'fleet')
    .where(sql<boolean>`payload->>'runId' = ${runId}`)
    .orderBy('seq', 'desc')
    .executeTakeFirst()
}

/** Writes a fresh job row for one tenant of a run (its previous job was lost). */
export async function requeueFleetJob(db: Db, runId: string, tenantId: string, concurrency: number): Promise<void> {
  await db.transaction().execute((trx) => writeOutbox(trx, [{ kind: 'fleet', name: 'migrate', tenant_id: tenantId, payload: { runId, tenantId, concurrency } }]))
}

/** Whether fleet-migration job rows wait for the relay. */
export async function unrelayedFleetJobs(db: Db): Promise<boolean> {
  const row = await db.selectFrom('outbox').select('id').where('kind', '=', 'fleet').where('relayed_at', 'is', null).limit(1).executeTakeFirst()
  return row !== undefined
}
