// Scheduled sweeps, as BullMQ job schedulers: one schedule per sweep however
// many workers run, and each sweep is safe to run twice.
//  - reap-leases: revoke leases past their expiry (drop their roles)
//  - expire-retention: wipe decommissioned tenants whose retention ran out (unless held)
//  - hibernate-idle: hibernate tenants idle longer than HIBERNATE_AFTER, idle as
//    Postgres sees it (no session, no new transaction), not only Landlord's API
import type { Job } from 'bullmq'
import { sql } from 'kysely'
import { LandlordError } from '../errors.js'
import { applyEvent } from '../lifecycle/transition.js'
import type { WorkerDeps } from './lifecycle.js'
import { createWorker, type Queues } from './queues.js'
import { sweepAndEnqueue } from './workers/webhooks.js'

export const MAINTENANCE_QUEUE = 'maintenance'
export type Sweep = 'reap-leases' | 'expire-retention' | 'hibernate-idle' | 'webhook-sweep'

export async function scheduleMaintenance(deps: WorkerDeps, queues: Queues): Promise<void> {
  const every = deps.config.maintenanceEveryMs
  const sweeps: Sweep[] = ['reap-leases', 'expire-retention', 'webhook-sweep']
  if (deps.config.hibernateAfterMs !== undefined) sweeps.push('hibernate-idle')
  else await queues.maintenance.removeJobScheduler('hibernate-idle')
  for (const sweep of sweeps) {
    await queues.maintenance.upsertJobScheduler(sweep, { every }, { name: sweep, opts: { removeOnComplete: 100, removeOnFail: 100 } })
  }
}

export async function reapLeases(deps: WorkerDeps): Promise<number> {
  return deps.secrets.reapExpired()
}

/** Applies WIPE to every decommissioned tenant past wipe_after and not under legal hold. */
export async function expireRetention(deps: WorkerDeps): Promise<number> {
  const due = await deps.db
    .selectFrom('tenants')
    .select('id')
    .where('state', '=', 'decommissioned')
    .where('wipe_after', '<=', new Date())
    .where('legal_hold_at', 'is', null)
    .limit(100)
    .execute()
  let wiped = 0
  for (const { id } of due) {
    const t = await applyEvent(deps.db, id, { type: 'WIPE' }, { actor: 'scheduler', expectState: 'decommissioned', data: { reason: 'retention expired' } }).catch(
      (err: unknown) => {
        // Held or moved on since the query: the next sweep looks again.
        if (err instanceof LandlordError && err.status === 409) return undefined
        throw err
      },
    )
    if (t) wiped++
  }
  return wiped
}

/**
 * Compares each active tenant's transaction counters in pg_stat_database with
 * the previous sweep: any session or new transaction marks it active now; a
 * tenant quiet for HIBERNATE_AFTER is hibernated.
 */
export async function hibernateIdle(deps: WorkerDeps): Promise<number> {
  const after = deps.config.hibernateAfterMs
  if (after === undefined) return 0
  const tenants = await deps.db.selectFrom('tenants').selectAll().where('state', '=', 'active').execute()
  if (tenants.length === 0) return 0
  const stats = await deps.cluster.query<{ datname: string; numbackends: number; xacts: string }>(
    'SELECT datname, numbackends, (xact_commit + xact_rollback)::text AS xacts FROM pg_stat_database WHERE datname = ANY($1)',
    [tenants.map((t) => t.database_name)],
  )
  const byName = new Map(stats.rows.map((r) => [r.datname, r]))
  let hibernated = 0
  for (const tenant of tenants) {
    const s = byName.get(tenant.database_name)
    if (!s) continue
    if (s.numbackends > 0 || s.xacts !== tenant.activity_counter) {
      await deps.db
        .updateTable('tenants')
        .set({ activity_counter: s.xacts, last_active_at: sql<Date>`now()` })
        .where('id', '=', tenant.id)
        .execute()
      continue
    }
    if (tenant.last_active_at.getTime() + after > Date.now()) continue
    const t = await applyEvent(deps.db, tenant.id, { type: 'HIBERNATE' }, {
      actor: 'scheduler',
      expectState: 'active',
      data: { reason: 'idle', idle_since: tenant.last_active_at.toISOString() },
    })
    if (t) hibernated++
  }
  return hibernated
}

const SWEEPS: Record<Sweep, (deps: WorkerDeps, queues: Queues) => Promise<number>> = {
  'reap-leases': reapLeases,
  'expire-retention': expireRetention,
  'hibernate-idle': hibernateIdle,
  'webhook-sweep': (deps, queues) => sweepAndEnqueue(deps, queues.webhooks),
}

export function startMaintenanceWorker(deps: WorkerDeps, queues: Queues) {
  return createWorker(deps.config, MAINTENANCE_QUEUE, async (job: Job) => {
    const sweep = SWEEPS[job.name as Sweep]
    if (!sweep) return 0
    const count = await sweep(deps, queues)
    if (count > 0) deps.log.info({ sweep: job.name, count }, 'maintenance sweep acted')
    return count
  }, { concurrency: 1 })
}
