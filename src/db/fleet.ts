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
    SELECT ${runId}, t.id, row_number() OVER (ORDER BY ${order}), t.slug, d.status, d.reason, t.schema_version
      FROM tenants t
      -- The first rule that applies decides.
      CROSS JOIN LATERAL (
        SELECT r.status, r.reason FROM (VALUES
          (1, coalesce(t.schema_version, 0) >= ${sel.target}, 'skipped', 'at the target version'),
          (2, t.state = 'provisioning', 'skipped', 'provisioning: born at the head version'),
          (3, t.quarantined_at IS NOT NULL AND NOT ${named}, 'skipped', 'quarantined: retry it by name'),
          (4, t.state = ANY(${DEFERRED_STATES}::text[]), 'deferred', t.state || ': migrated before it next reports active'),
          (5, true, 'pending', NULL)) AS r (rank, applies, status, reason)
        WHERE r.applies ORDER BY r.rank LIMIT 1) d
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
export async function canaryState(trx: Conn, runId: string): Promise<{ open: number; failed: number }> {
  const r = await sql<{ open: string; failed: string }>`
    SELECT count(*) FILTER (WHERE status IN ('pending', 'queued', 'running')) AS open,
           count(*) FILTER (WHERE status = 'failed') AS failed
      FROM fleet_migration_tenants WHERE run_id = ${runId} AND canary`.execute(trx)
  const row = r.rows[0]
  return { open: Number(row?.open ?? 0), failed: Number(row?.failed ?? 0) }
}

/** Whether any item is in flight (queued or running), and whether any waits; each found through the index of open items. */
export async function openItems(trx: Conn, runId: string): Promise<{ inFlight: boolean; pending: boolean }> {
  const r = await sql<{ in_flight: boolean; pending: boolean }>`
    SELECT EXISTS (SELECT 1 FROM fleet_migration_tenants WHERE run_id = ${runId} AND status IN ('queued', 'running')) AS in_flight,
           EXISTS (SELECT 1 FROM fleet_migration_tenants WHERE run_id = ${runId} AND status = 'pending') AS pending`.execute(trx)
  return { inFlight: r.rows[0]?.in_flight ?? false, pending: r.rows[0]?.pending ?? false }
}

/** Moves the waiting items (or the waiting canaries) to `queued`; returns their tenant ids, in order. */
export async function queueNext(trx: Transaction<Database>, runId: string, canariesOnly: boolean): Promise<string[]> {
  const r = await sql<{ tenant_id: string; ordinal: number }>`
    UPDATE fleet_migration_tenants SET status = 'queued'
     WHERE run_id = ${runId} AND status = 'pending' ${canariesOnly ? sql`AND canary` : sql``}
    RETURNING tenant_id, ordinal`.execute(trx)
  return r.rows.sort((a, b) => a.ordinal - b.ordinal).map((row) => row.tenant_id)
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

export interface OutcomeRecord {
  /** Item statuses the outcome may replace (default: running). */
  from?: FleetItemStatus[]
  /** Also update the tenant's row and history (false for a dry run). */
  registry: boolean
  actor: string
  quarantineAfter: number
}

/**
 * Records an item's outcome and, with `registry`, what it means for the
 * tenant (schema version, or the failure towards quarantine) and a history
 * row, in one statement. False when the item was not in `from` (recorded
 * already): then nothing is written.
 */
export async function recordItemOutcome(db: Conn, runId: string, tenantId: string, outcome: Outcome, opts: OutcomeRecord): Promise<boolean> {
  const from = opts.from ?? ['running']
  const item = sql`
    UPDATE fleet_migration_tenants
       SET status = ${outcome.status},
           to_version = ${outcome.status === 'succeeded' ? outcome.to_version : null},
           failed_version = ${outcome.status === 'failed' ? outcome.failed_version : null},
           error = ${outcome.status === 'failed' ? outcome.error : null},
           reason = ${outcome.status === 'skipped' || outcome.status === 'deferred' ? outcome.reason : null},
           finished_at = now()
     WHERE run_id = ${runId} AND tenant_id = ${tenantId} AND status = ANY(${from}::text[])
    RETURNING tenant_id`
  let tenant = sql`SELECT NULL::uuid AS id, NULL::boolean AS quarantined WHERE false`
  let event = sql`SELECT 1 WHERE false`
  if (opts.registry && outcome.status === 'succeeded') {
    tenant = sql`UPDATE tenants t SET ${migratedSet(outcome.to_version)} FROM item WHERE t.id = item.tenant_id RETURNING t.id, false AS quarantined`
    event = sql`
      INSERT INTO tenant_events (tenant_id, type, actor, data)
      SELECT id, 'schema_migrated', ${opts.actor}, jsonb_build_object('version', ${outcome.to_version}::int) FROM tenant RETURNING 1`
  } else if (opts.registry && outcome.status === 'failed') {
    tenant = sql`
      UPDATE tenants t SET ${failedSet(outcome.error, opts.quarantineAfter)}
        FROM item WHERE t.id = item.tenant_id RETURNING t.id, t.quarantined_at IS NOT NULL AS quarantined`
    event = sql`
      INSERT INTO tenant_events (tenant_id, type, actor, data)
      SELECT id, 'schema_migration_failed', ${opts.actor},
             jsonb_build_object('version', ${outcome.failed_version}::int, 'error', ${outcome.error}::text, 'quarantined', quarantined)
        FROM tenant RETURNING 1`
  }
  const r = await sql<{ n: string }>`
    WITH item AS (${item}), tenant AS (${tenant}), event AS (${event}) -- every data-modifying CTE runs
    SELECT count(*) AS n FROM item`.execute(db)
  return Number(r.rows[0]?.n ?? 0) > 0
}

/** What a migration that reached `version` sets on its tenant: never backwards, and any quarantine ends. */
const migratedSet = (version: number) =>
  sql`schema_version = greatest(coalesce(schema_version, 0), ${version}), migration_failures = 0, migration_error = NULL, quarantined_at = NULL`

/** What a failed migration sets: counted, and quarantined once it has failed `quarantineAfter` times in a row. */
const failedSet = (error: string, quarantineAfter: number) =>
  sql`migration_failures = migration_failures + 1, migration_error = ${error},
      quarantined_at = CASE WHEN migration_failures + 1 >= ${quarantineAfter} THEN coalesce(quarantined_at, now()) END`

/** Queued items go back to waiting (a cancelled run does not start them). */
export async function unqueue(trx: Transaction<Database>, runId: string): Promise<void> {
  await trx.updateTable('fleet_migration_tenants').set({ status: 'pending' }).where('run_id', '=', runId).where('status', '=', 'queued').execute()
}

/** Failed items wait again, for a retry (a failed canary stays a canary); returns how many. */
export async function resetFailed(trx: Transaction<Database>, runId: string): Promise<number> {
  const r = await trx
    .updateTable('fleet_migration_tenants')
    .set({ status: 'pending', error: null, failed_version: null, finished_at: null })
    .where('run_id', '=', runId)
    .where('status', '=', 'failed')
    .executeTakeFirst()
  return Number(r.numUpdatedRows)
}

/** A migration reached `version` outside a fleet run (at resume): the registry follows. */
export async function recordMigrated(db: Conn, tenantId: string, version: number): Promise<void> {
  await sql`UPDATE tenants SET ${migratedSet(version)} WHERE id = ${tenantId}`.execute(db)
}

/** A migration failed outside a fleet run (at resume); true when the tenant is now quarantined. */
export async function recordMigrationFailure(db: Conn, tenantId: string, error: string, quarantineAfter: number): Promise<boolean> {
  const r = await sql<{ quarantined: boolean }>`
    UPDATE tenants SET ${failedSet(error, quarantineAfter)} WHERE id = ${tenantId} RETURNING quarantined_at IS NOT NULL AS quarantined`.execute(db)
  return r.rows[0]?.quarantined ?? false
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
