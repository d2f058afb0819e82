// Fleet migration runs: what a run selects, how it is scheduled and how it
// ends. A run is rows in the control plane (the run, one row per tenant), so
// a restart loses nothing. Work reaches the workers through the outbox, one
// job per tenant, never more in flight than the run's concurrency; canaries
// go first. Each tenant's outcome is recorded with the next tenants' jobs in
// one transaction, and the run ends, with its webhook, in the transaction
// that records its last outcome.
import { sql, type Transaction } from 'kysely'
import type pg from 'pg'
import type { Config } from '../config.js'
import {
  canaryState,
  openItems,
  countItems,
  finishRun,
  findRun,
  insertItems,
  insertRun,
  listItems,
  listRuns,
  lockRun,
  openRun,
  queueNext,
  resetFailed,
  unknownSlugs,
  unqueue,
  updateRun,
  type Counts,
} from '../db/fleet.js'
import type { Db } from '../db/index.js'
import { isUuid } from '../db/index.js'
import { writeOutbox } from '../db/outbox.js'
import type { Database, FleetItem, FleetItemStatus, FleetRun, RunFile } from '../db/schema.js'
import { fleetRunFinished, fleetRunNotFinished, fleetRunNotFound, fleetRunOpen, migrationsInvalid, nothingToRetry, unknownTargetVersion, unknownTenants } from '../errors.js'
import { freeConnections } from '../tenancy/cluster.js'
import { MigrationError, readTenantMigrations, type TenantMigration } from '../tenancy/migrations.js'

export interface FleetDeps {
  db: Db
  config: Config
  /** Admin pool on the tenant cluster: its free connections cap the concurrency. */
  cluster: pg.Pool
}

export interface FleetRequest {
  target_version?: number
  tenants?: string[]
  plan?: string
  concurrency?: number
  canary?: number
  on_error?: 'continue' | 'stop'
  dry_run?: boolean
}

/** Serialises starting and retrying runs, so "one run at a time" is checked, not raced. */
const RUNS_LOCK = sql`SELECT pg_advisory_xact_lock(hashtext('landlord.fleet_migrations'))`

/** The folder as it is now: read afresh for every run. */
export async function readFolder(config: Config): Promise<TenantMigration[]> {
  try {
    return await readTenantMigrations(config.tenantMigrationsDir)
  } catch (err) {
    if (err instanceof MigrationError) throw migrationsInvalid(err.message)
    throw err
  }
}

function filesUpTo(migrations: TenantMigration[], target: number): RunFile[] {
  return migrations.filter((m) => m.version <= target).map(({ version, name, checksum }) => ({ version, name, checksum }))
}

/** At most this many tenants migrate at once, whatever is asked. */
export const MAX_CONCURRENCY = 64

/** The requested concurrency, capped by a share of the cluster's free connections (at least 1). */
async function effectiveConcurrency(deps: FleetDeps, requested: number): Promise<number> {
  const free = await freeConnections(deps.cluster)
  return Math.max(1, Math.min(requested, MAX_CONCURRENCY, Math.floor((free * deps.config.fleetConnectionSharePct) / 100)))
}

/** Starts a run; refused (409) while another is open. */
export async function startFleetMigration(deps: FleetDeps, request: FleetRequest, actor: string): Promise<FleetRun> {
  const migrations = await readFolder(deps.config)
  const versions = migrations.map((m) => m.version)
  const head = versions.at(-1) ?? 0
  const target = request.target_version ?? head
  if (request.target_version !== undefined && !versions.includes(target)) throw unknownTargetVersion(target, versions)
  const slugs = request.tenants === undefined ? undefined : [...new Set(request.tenants)]
  if (slugs) {
    const unknown = await unknownSlugs(deps.db, slugs)
    if (unknown.length > 0) throw unknownTenants(unknown)
  }
  const concurrency = await effectiveConcurrency(deps, request.concurrency ?? deps.config.fleetConcurrency)
  return deps.db.transaction().execute(async (trx) => {
    await RUNS_LOCK.execute(trx)
    const open = await openRun(trx)
    if (open) throw fleetRunOpen(open.id)
    const run = await insertRun(trx, {
      target_version: target,
      files: filesUpTo(migrations, target),
      tenants: slugs ?? null,
      plan: request.plan ?? null,
      concurrency,
      canary: request.canary ?? 0,
      on_error: request.on_error ?? 'continue',
      dry_run: request.dry_run ?? false,
      requested_by: actor,
    })
    if (!run) throw fleetRunOpen((await openRun(trx))?.id ?? 'unknown')
    await insertItems(trx, run.id, { slugs, plan: request.plan, target, canary: run.canary })
    await release(trx, run, run.canary > 0)
    return run
  }).then(async (run) => {
    await settle(deps.db, run) // a run with nothing to do ends here
    return run
  })
}

/**
 * Runs the failed tenants of a finished run again (quarantined ones too: a
 * retry is explicit), against the folder as it is now: a fixed file is what
 * the retry applies. The run resumes: tenants a stop or a cancel kept from
 * starting go on too, after the failed canaries if a canary failed. Tenants
 * that succeeded, were skipped or deferred are left alone.
 */
export async function retryFleetMigration(deps: FleetDeps, id: string): Promise<FleetRun> {
  const migrations = await readFolder(deps.config)
  return deps.db.transaction().execute(async (trx) => {
    await RUNS_LOCK.execute(trx)
    const run = isUuid(id) ? await lockRun(trx, id) : undefined
    if (!run) throw fleetRunNotFound(id)
    if (run.finished_at === null) throw fleetRunNotFinished(id)
    const open = await openRun(trx)
    if (open) throw fleetRunOpen(open.id)
    if (!migrations.some((m) => m.version === run.target_version)) throw unknownTargetVersion(run.target_version, migrations.map((m) => m.version))
    if ((await resetFailed(trx, id)) === 0) throw nothingToRetry(id)
    const retried = await trx
      .updateTable('fleet_migrations')
      .set({ status: 'running', stop_reason: null, finished_at: null, retried_at: new Date(), files: JSON.stringify(filesUpTo(migrations, run.target_version)) })
      .where('id', '=', id)
      .returningAll()
      .executeTakeFirstOrThrow()
    await release(trx, retried, (await canaryState(trx, id)).open > 0)
    return retried
  })
}

/** Stops scheduling: queued tenants are not started, running ones finish. */
export async function cancelFleetMigration(db: Db, id: string): Promise<FleetRun> {
  const run = await db.transaction().execute(async (trx) => {
    const run = isUuid(id) ? await lockRun(trx, id) : undefined
    if (!run) throw fleetRunNotFound(id)
    if (run.finished_at !== null) throw fleetRunFinished(id, run.status)
    await updateRun(trx, id, { status: 'cancelled', stop_reason: 'cancelled by request' })
    await unqueue(trx, id)
    return run
  })
  await settle(db, run)
  return getFleetMigration(db, id)
}

export async function getFleetMigration(db: Db, id: string): Promise<FleetRun> {
  const run = isUuid(id) ? await findRun(db, id) : undefined
  if (!run) throw fleetRunNotFound(id)
  return run
}

/**
 * Hands the run's waiting tenants to the workers: all of them, or only the
 * canaries while those are not done. BullMQ's global concurrency, set from
 * the run, bounds how many run at once across every worker process.
 */
async function release(trx: Transaction<Database>, run: FleetRun, canariesOnly: boolean): Promise<void> {
  const ids = await queueNext(trx, run.id, canariesOnly)
  const payload = (tenantId: string) => ({ runId: run.id, tenantId, concurrency: run.concurrency })
  await writeOutbox(trx, ids.map((tenantId) => ({ kind: 'fleet', name: 'migrate', tenant_id: tenantId, payload: payload(tenantId) })))
}

/**
 * Moves a run on after an outcome was committed: releases the rest once the
 * canaries are done (or stops the run if one failed), and ends the run once
 * nothing is in flight, writing its webhook. It runs after the outcome's own
 * transaction, under the run's lock: of two last outcomes committed at once,
 * the later check sees both, so a run is always ended, and only once.
 */
export async function settle(db: Db, known: FleetRun): Promise<void> {
  const runId = known.id
  if (!(await needsSettling(db, known))) return
  await db.transaction().execute(async (trx) => {
    const run = await lockRun(trx, runId)
    if (!run || run.finished_at !== null) return
    let status = run.status
    if (status === 'running' && run.canary > 0) {
      const canary = await canaryState(trx, runId)
      if (canary.failed > 0) {
        status = 'stopped'
        await updateRun(trx, runId, { status, stop_reason: `${canary.failed} canary tenant(s) failed` })
        await unqueue(trx, runId)
      } else if (canary.open === 0) {
        await release(trx, run, false)
      }
    }
    const open = await openItems(trx, runId)
    if (open.inFlight || (status === 'running' && open.pending)) return
    const counts = await countItems(trx, runId)
    const final = status !== 'running' ? status : counts.failed > 0 ? 'completed_with_errors' : 'completed'
    const finished = await finishRun(trx, runId, final)
    // A dry run changed nothing: billing hears of real runs only.
    if (finished && !finished.dry_run) {
      await writeOutbox(trx, [
        {
          kind: 'webhook',
          name: 'fleet_migration.completed',
          tenant_id: null,
          payload: { type: 'fleet_migration.completed', timestamp: new Date().toISOString(), data: { fleet_migration: runSummary(finished, counts) } },
        },
      ])
    }
  })
}

/**
 * Read without the lock: while another tenant is in flight, that tenant's own
 * settle comes after this outcome's commit and sees it, so only a run with
 * nothing in flight, or at the end of its canaries, needs the lock.
 */
async function needsSettling(db: Db, known: FleetRun): Promise<boolean> {
  const open = await openItems(db, known.id)
  if (!open.inFlight) return true // the locked path reads the run afresh
  if (known.canary === 0) return false
  const [run, canary] = await Promise.all([findRun(db, known.id), canaryState(db, known.id)])
  if (run?.status !== 'running') return false
  return canary.failed > 0 || (canary.open === 0 && open.pending)
}

/** A tenant failed in a run that stops on error: nothing more is started. */
export async function stopOnError(db: Db, runId: string): Promise<void> {
  await db.transaction().execute(async (trx) => {
    const run = await lockRun(trx, runId)
    if (run?.status !== 'running') return
    await updateRun(trx, runId, { status: 'stopped', stop_reason: 'a tenant failed and on_error is stop' })
    await unqueue(trx, runId)
  })
}

/** What a client (and the webhook) sees of a run's counts. */
export function runSummary(run: FleetRun, counts: Counts) {
  return {
    id: run.id,
    status: run.status,
    target_version: run.target_version,
    dry_run: run.dry_run,
    total: Object.values(counts).reduce((a, b) => a + b, 0),
    succeeded: counts.succeeded,
    failed: counts.failed,
    skipped: counts.skipped,
    deferred: counts.deferred,
    pending: counts.pending + counts.queued + counts.running,
    running: counts.running,
    started_at: run.created_at.toISOString(),
    finished_at: run.finished_at?.toISOString() ?? null,
  }
}

/** A run with its counts and its first failures. */
export async function describeFleetMigration(db: Db, id: string): Promise<{ run: FleetRun; counts: Counts; failures: FleetItem[] }> {
  const run = await getFleetMigration(db, id)
  const [counts, failures] = await Promise.all([countItems(db, run.id), listItems(db, run.id, { statuses: ['failed'], limit: 100 })])
  return { run, counts, failures }
}

/** A page of runs, newest first, each with its counts. */
export async function listFleetMigrations(db: Db, limit: number, before?: string) {
  const page = await listRuns(db, limit, before)
  const items = await Promise.all(page.items.map(async (run) => ({ run, counts: await countItems(db, run.id) })))
  return { items, last: page.last }
}

/** A page of a run's tenants, in scheduling order. */
export async function fleetMigrationTenants(db: Db, id: string, opts: { status?: FleetItemStatus; limit: number; after?: number }) {
  const run = await getFleetMigration(db, id)
  return listItems(db, run.id, { statuses: opts.status && [opts.status], limit: opts.limit, after: opts.after })
}
