// Fleet migration runs and their per-tenant outcomes, and what the registry
// keeps about each tenant's schema (version, last error, quarantine).
import { sql, type Insertable, type Kysely, type Transaction } from 'kysely'
import { STABLE_STATES } from '../lifecycle/events.js'
import type { Database, FleetItem, FleetItemStatus, FleetMigrationTable, FleetRun, FleetRunStatus } from './schema.js'

type Conn = Kysely<Database> | Transaction<Database>

/** Inserts a run unless one is open (the one-open-run index): then undefined. */
export async function insertRun(trx: Transaction<Database>, values: Insertable<FleetMigrationTable>): Promise<FleetRun | undefined> {
  return trx
    .insertInto('fleet_migrations')
    .values({ ...values, files: JSON.stringify(values.files) })
    .onConflict((oc) => oc.doNothing())
    .returningAll()
    .executeTakeFirst()
}

export async function openRun(db: Conn): Promise<FleetRun | undefined> {
  return db.selectFrom('fleet_migrations').selectAll().where('finished_at', 'is', null).executeTakeFirst()
}

export async function findRun(db: Conn, id: string): Promise<FleetRun | undefined> {
  return db.selectFrom('fleet_migrations').selectAll().where('id', '=', id).executeTakeFirst()
}

export async function lockRun(trx: Transaction<Database>, id: string): Promise<FleetRun | undefined> {
  return trx.selectFrom('fleet_migrations').selectAll().where('id', '=', id).forUpdate().executeTakeFirst()
}

/** Newest first, one keyset page (by `seq`), one extra row to know whether more follow. */
export async function listRuns(db: Conn, limit: number, before?: string): Promise<{ items: FleetRun[]; last?: string }> {
  let q = db.selectFrom('fleet_migrations').selectAll().orderBy('seq', 'desc').limit(limit + 1)
  if (before !== undefined) q = q.where('seq', '<', before)
  const rows = await q.execute()
  const items = rows.slice(0, limit)
  return { items, last: rows.length > limit ? items[items.length - 1]?.seq : undefined }
}

export async function updateRun(trx: Transaction<Database>, id: string, patch: { status?: FleetRunStatus; stop_reason?: string | null; retried_at?: Date; finished_at?: null }): Promise<void> {
  await trx.updateTable('fleet_migrations').set(patch).where('id', '=', id).execute()
}

/** Ends an open run; undefined when it had ended already (only one caller sends its webhook). */
export async function finishRun(trx: Transaction<Database>, id: string, status: FleetRunStatus): Promise<FleetRun | undefined> {
  return trx
    .updateTable('fleet_migrations')
    .set({ status, finished_at: sql<Date>`now()` })
    .where('id', '=', id)
    .where('finished_at', 'is', null)
    .returningAll()
    .executeTakeFirst()
}

export interface Selection {
  /** Slugs, in the order given (canaries are the first ones); undefined: every tenant. */
  slugs?: string[]
  plan?: string
  target: number
  canary: number
}

const DEFERRED_STATES = ['suspended', 'hibernated', 'decommissioned', 'failed', 'suspending', 'resuming', 'hibernating', 'waking', 'decommissioning', 'restoring']

/**
 * Writes one row per selected tenant in a single statement, decided from the
 * registry alone (no tenant database is opened): at the target already,
 * quarantined (unless named), still provisioning (born at the head) are
 * skipped; a tenant that is not serving is deferred (its next resume, wake,
 * restore or retry migrates it before it reports `active`); the rest wait.
 * Then marks the canaries. Returns how many rows were written.
 */
export async function insertItems(trx: Transaction<Database>, runId: string, sel: Selection): Promise<number> {
  const named = sel.slugs !== undefined
  const order = named ? sql`array_position(${sel.slugs}::text[], t.slug)` : sql`t.seq`
  const r = await sql`
    INSERT INTO fleet_migration_tenants (run_id, tenant_id, ordinal, slug, status, reason, from_version)
    SELECT ${runId}, t.id, row_number() OVER (ORDER BY ${order}), t.slug,
           CASE WHEN coalesce(t.schema_version, 0) >= ${sel.target} THEN 'skipped'
                WHEN t.state = 'provisioning' THEN 'skipped'
                WHEN t.quarantined_at IS NOT NULL AND NOT ${named} THEN 'skipped'
                WHEN t.state = ANY(${DEFERRED_STATES}::text[]) THEN 'deferred'
                ELSE 'pending' END,
           CASE WHEN coalesce(t.schema_version, 0) >= ${sel.target} THEN 'at the target version'
                WHEN t.state = 'provisioning' THEN 'provisioning: born at the head version'
                WHEN t.quarantined_at IS NOT NULL AND NOT ${named} THEN 'quarantined: retry it by name'
                WHEN t.state = ANY(${DEFERRED_STATES}::text[]) THEN t.state || ': migrated before it next reports active'
                END,
           t.schema_version
      FROM tenants t
     WHERE t.state <> 'wiped'
       ${named ? sql`AND t.slug = ANY(${sel.slugs}::text[])` : sql``}
       ${sel.plan !== undefined ? sql`AND t.plan = ${sel.plan}` : sql``}`.execute(trx)
  if (sel.canary > 0) {
    await sql`
      UPDATE fleet_migration_tenants SET canary = true
       WHERE run_id = ${runId} AND tenant_id IN (
         SELECT tenant_id FROM fleet_migration_tenants
          WHERE run_id = ${runId} AND status = 'pending'
          ORDER BY ${named ? sql`ordinal` : sql`random()`} LIMIT ${sel.canary})`.execute(trx)
  }
  return Number(r.numAffectedRows ?? 0n)
}

/** Slugs among `slugs` that name no tenant (wiped ones included: there is nothing to migrate). */
export async function unknownSlugs(db: Conn, slugs: string[]): Promise<string[]> {
  if (slugs.length === 0) return []
  const found = await db.selectFrom('tenants').select('slug').where('slug', 'in', slugs).where('state', '<>', 'wiped').execute()
  const known = new Set(found.map((r) => r.slug))
  return slugs.filter((s) => !known.has(s))
}

export type Counts = Record<FleetItemStatus, number>

export async function countItems(db: Conn, runId: string): Promise<Counts> {
  const rows = await db
    .selectFrom('fleet_migration_tenants')
    .select(['status', (eb) => eb.fn.countAll<string>().as('n')])
    .where('run_id', '=', runId)
    .groupBy('status')
    .execute()
  const counts: Counts = { pending: 0, queued: 0, running: 0, succeeded: 0, failed: 0, skipped: 0, deferred: 0 }
  for (const r of rows) counts[r.status] = Number(r.n)
  return counts
}

export async function listItems(db: Conn, runId: string, opts: { statuses?: FleetItemStatus[]; limit: number; after?: number }): Promise<FleetItem[]> {
  let q = db.selectFrom('fleet_migration_tenants').selectAll().where('run_id', '=', runId).orderBy('ordinal').limit(opts.limit)
  if (opts.statuses !== undefined) q = q.where('status', 'in', opts.statuses)
  if (opts.after !== undefined) q = q.where('ordinal', '>', opts.after)
  return q.execute()
}

/** Whether a canary is still open, and whether one failed. */
export async function canaryState(trx: Transaction<Database>, runId: string): Promise<{ open: number; failed: number }> {
  const r = await sql<{ open: string; failed: string }>`
    SELECT count(*) FILTER (WHERE status IN ('pending', 'queued', 'running')) AS open,
           count(*) FILTER (WHERE status = 'failed') AS failed
      FROM fleet_migration_tenants WHERE run_id = ${runId} AND canary`.execute(trx)
  const row = r.rows[0]
  return { open: Number(row?.open ?? 0), failed: Number(row?.failed ?? 0) }
}

/** Items handed to a worker and not finished. */
export async function countInFlight(trx: Transaction<Database>, runId: string): Promise<number> {
  const r = await trx
    .selectFrom('fleet_migration_tenants')
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .where('run_id', '=', runId)
    .where('status', 'in', ['queued', 'running'])
    .executeTakeFirst()
  return Number(r?.n ?? 0)
}

/** Moves up to `limit` waiting items (canaries first, then in order) to `queued`; returns their tenant ids. */
export async function queueNext(trx: Transaction<Database>, runId: string, limit: number, canariesOnly: boolean): Promise<string[]> {
  if (limit <= 0) return []
  let q = trx
    .selectFrom('fleet_migration_tenants')
    .select('tenant_id')
    .where('run_id', '=', runId)
    .where('status', '=', 'pending')
    .orderBy('canary', 'desc')
    .orderBy('ordinal')
    .limit(limit)
    .forUpdate()
    .skipLocked()
  if (canariesOnly) q = q.where('canary', '=', true)
  const ids = (await q.execute()).map((r) => r.tenant_id)
  if (ids.length > 0) {
    await trx.updateTable('fleet_migration_tenants').set({ status: 'queued' }).where('run_id', '=', runId).where('tenant_id', 'in', ids).execute()
  }
  return ids
}

/** Hands a queued item to a worker (or back to the same one after a crash); undefined when it is no longer wanted. */
export async function claimItem(db: Conn, runId: string, tenantId: string): Promise<FleetItem | undefined> {
  return db
    .updateTable('fleet_migration_tenants')
    .set((eb) => ({ status: 'running', attempts: eb('attempts', '+', 1), started_at: sql<Date>`coalesce(started_at, now())` }))
    .where('run_id', '=', runId)
    .where('tenant_id', '=', tenantId)
    .where('status', 'in', ['queued', 'running'])
    .returningAll()
    .executeTakeFirst()
}

export type Outcome =
  | { status: 'succeeded'; to_version: number }
  | { status: 'failed'; failed_version: number | null; error: string }
  | { status: 'skipped' | 'deferred'; reason: string }

/** Records the outcome of an item in one of `from` (running); false when it was not (recorded already). */
export async function finishItem(trx: Transaction<Database>, runId: string, tenantId: string, outcome: Outcome, from: FleetItemStatus[] = ['running']): Promise<boolean> {
  const r = await trx
    .updateTable('fleet_migration_tenants')
    .set({ ...outcome, finished_at: sql<Date>`now()` })
    .where('run_id', '=', runId)
    .where('tenant_id', '=', tenantId)
    .where('status', 'in', from)
    .executeTakeFirst()
  return r.numUpdatedRows > 0n
}

/** Queued items go back to waiting (a cancelled run does not start them). */
export async function unqueue(trx: Transaction<Database>, runId: string): Promise<void> {
  await trx.updateTable('fleet_migration_tenants').set({ status: 'pending' }).where('run_id', '=', runId).where('status', '=', 'queued').execute()
}

/** Failed items wait again, for a retry; returns how many. */
export async function resetFailed(trx: Transaction<Database>, runId: string): Promise<number> {
  const r = await trx
    .updateTable('fleet_migration_tenants')
    .set({ status: 'pending', error: null, failed_version: null, finished_at: null, canary: false })
    .where('run_id', '=', runId)
    .where('status', '=', 'failed')
    .executeTakeFirst()
  return Number(r.numUpdatedRows)
}

/** A migration reached `version`: the registry follows (never backwards) and any quarantine ends. */
export async function recordMigrated(trx: Conn, tenantId: string, version: number): Promise<void> {
  await trx
    .updateTable('tenants')
    .set({
      schema_version: sql<number>`greatest(coalesce(schema_version, 0), ${version})`,
      migration_failures: 0,
      migration_error: null,
      quarantined_at: null,
    })
    .where('id', '=', tenantId)
    .execute()
}

/** A migration failed: counted, and the tenant quarantined once it has failed `quarantineAfter` times in a row. */
export async function recordMigrationFailure(db: Conn, tenantId: string, error: string, quarantineAfter: number): Promise<boolean> {
  const r = await db
    .updateTable('tenants')
    .set((eb) => ({
      migration_failures: eb('migration_failures', '+', 1),
      migration_error: error,
      quarantined_at: sql<Date>`CASE WHEN migration_failures + 1 >= ${quarantineAfter} THEN coalesce(quarantined_at, now()) END`,
    }))
    .where('id', '=', tenantId)
    .returning('quarantined_at')
    .executeTakeFirst()
  return r?.quarantined_at != null
}

/** Tenants (not wiped) per schema version, lowest first; null: not migrated yet. */
export async function tenantsPerVersion(db: Conn): Promise<Array<{ version: number | null; count: number }>> {
  const rows = await db
    .selectFrom('tenants')
    .select(['schema_version', (eb) => eb.fn.countAll<string>().as('n')])
    .where('state', '<>', 'wiped')
    .groupBy('schema_version')
    .orderBy('schema_version')
    .execute()
  return rows.map((r) => ({ version: r.schema_version, count: Number(r.n) }))
}

/** Tenants (not wiped, not provisioning) below `head`, furthest behind first. */
export async function laggards(db: Conn, head: number, limit: number) {
  return db
    .selectFrom('tenants')
    .select(['id', 'slug', 'state', 'schema_version', 'migration_error', 'quarantined_at'])
    .where('state', 'in', STABLE_STATES.filter((s) => s !== 'wiped'))
    .where((eb) => eb(eb.fn.coalesce('schema_version', sql.lit(0)), '<', head))
    .orderBy(sql`coalesce(schema_version, 0)`)
    .orderBy('seq')
    .limit(limit)
    .execute()
}
