// Scheduled sweeps, as BullMQ job schedulers: one schedule per sweep however
// many workers run, and each sweep is safe to run twice.
//  - reap-leases: revoke leases past their expiry (drop their roles)
//  - expire-retention: wipe decommissioned tenants whose retention ran out (unless held)
//  - hibernate-idle: hibernate tenants idle longer than HIBERNATE_AFTER, idle as
//    Postgres sees it (no client session, none opened), not only Landlord's API
//  - requeue-stuck: hand a fresh job to a tenant whose transitional state outlived its job
//  - fleet-resume: hand a fresh job to a fleet migration's tenant whose job was lost
//  - webhook-sweep: re-trigger webhook fan-outs and deliveries whose trigger was lost
//  - prune: delete expired idempotency keys, old outbox rows and delivery logs
import type { Job } from 'bullmq'
import { listItems, openRun } from '../db/fleet.js'
import { jobsOfVersion, lastFleetJob, pruneOutbox, requeueFleetJob, unrelayedFleetJobs } from '../db/outbox.js'
import { recordOutcome } from '../fleet/outcomes.js'
import { settle } from '../fleet/runs.js'
import { pruneIdempotencyKeys, pruneSettledDeliveries } from '../db/prune.js'
import { dueForWipe, markInUse, tenantsInState, unchangedSince } from '../db/tenants.js'
import { TRANSITIONAL } from '../lifecycle/states.js'
import { applyEvent } from '../lifecycle/transition.js'
import { databaseActivity } from '../tenancy/activity.js'
import type { WorkerDeps } from './context.js'
import { jobId } from './relay.js'
import { createWorker, type Queues } from './queues.js'
import { sweepAndEnqueue } from './workers/webhooks.js'

export const MAINTENANCE_QUEUE = 'maintenance'
export type Sweep = 'reap-leases' | 'expire-retention' | 'hibernate-idle' | 'webhook-sweep' | 'requeue-stuck' | 'fleet-resume' | 'prune'

export async function scheduleMaintenance(deps: WorkerDeps, queues: Queues): Promise<void> {
  const every = deps.config.maintenanceEveryMs
  const sweeps: Sweep[] = ['reap-leases', 'expire-retention', 'webhook-sweep', 'requeue-stuck', 'fleet-resume', 'prune']
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
  let wiped = 0
  for (const { id } of await dueForWipe(deps.db, 100)) {
    const t = await applyEvent(deps.db, id, { type: 'WIPE' }, {
      actor: 'scheduler',
      expectState: 'decommissioned',
      // Held or restored since the query: the next sweep looks again.
      precondition: (locked) => locked.legal_hold_at === null,
      data: { reason: 'retention expired' },
    })
    if (t) wiped++
  }
  return wiped
}

/**
 * Idle as Postgres sees it: no client session open on the tenant's database
 * now, and none opened since the previous sweep (pg_stat_database.sessions).
 * Transaction counters do not count: autovacuum moves them on an idle database.
 * A tenant quiet for HIBERNATE_AFTER is hibernated.
 */
export async function hibernateIdle(deps: WorkerDeps): Promise<number> {
  const after = deps.config.hibernateAfterMs
  if (after === undefined) return 0
  const tenants = await tenantsInState(deps.db, 'active')
  const activity = await databaseActivity(deps.cluster, tenants.map((t) => t.database_name))
  const busy: Array<{ id: string; sessions: string }> = []
  const quiet: typeof tenants = []
  for (const tenant of tenants) {
    const s = activity.get(tenant.database_name)
    if (!s) continue
    if (s.clients > 0 || s.sessions !== tenant.activity_counter) busy.push({ id: tenant.id, sessions: s.sessions })
    else if (tenant.last_active_at.getTime() + after <= Date.now()) quiet.push(tenant)
  }
  // One statement for every tenant in use, however many there are.
  await markInUse(deps.db, busy)
  let hibernated = 0
  for (const tenant of quiet) {
    const t = await applyEvent(deps.db, tenant.id, { type: 'HIBERNATE' }, {
      actor: 'scheduler',
      expectState: 'active',
      // Someone asked for credentials meanwhile: not idle after all.
      precondition: (locked) => locked.last_active_at.getTime() === tenant.last_active_at.getTime(),
      data: { reason: 'idle', idle_since: tenant.last_active_at.toISOString() },
    })
    if (t) hibernated++
  }
  return hibernated
}

const ALIVE = new Set(['waiting', 'active', 'delayed', 'prioritized', 'waiting-children'])

/**
 * A tenant whose transitional state outlived its job would wait forever: the
 * job was lost with Redis, or BullMQ failed it (stalled twice) without the
 * processor reporting. After STUCK_AFTER it is handed a fresh job: the
 * statechart re-enters its state (JOB_REQUEUED), which bumps the version (a
 * job of the old run that turns up after all is no longer wanted) and queues
 * the step through the outbox like any other. The step is idempotent and resumes.
 */
export async function requeueStuck(deps: WorkerDeps, queues: Queues): Promise<number> {
  const stuck = await unchangedSince(deps.db, TRANSITIONAL, new Date(Date.now() - deps.config.stuckAfterMs), 100)
  let requeued = 0
  for (const tenant of stuck) {
    const rows = await jobsOfVersion(deps.db, tenant.id, tenant.version)
    const step = rows.find((r) => r.name === tenant.operation) ?? rows[0]
    if (step && step.relayed_at === null) continue // the relay has not handed it over yet
    const job = step ? await queues.lifecycle.getJob(jobId(step.id)) : undefined
    if (job && ALIVE.has(await job.getState())) continue
    const moved = await applyEvent(deps.db, tenant.id, { type: 'JOB_REQUEUED' }, {
      actor: 'scheduler',
      expectState: tenant.state,
      expectVersion: tenant.version,
      data: { step: tenant.operation, previous_job: step ? jobId(step.id) : null },
    })
    if (!moved) continue // it moved on meanwhile
    deps.log.warn({ tenantId: tenant.id, state: tenant.state, step: tenant.operation }, 'tenant stuck without a live job; job requeued')
    requeued++
  }
  return requeued
}

/**
 * BullMQ hands the job of a worker that died to another one; a job lost with
 * Redis, or failed by BullMQ after stalling repeatedly, is not. A running
 * tenant of the open fleet migration whose job is neither waiting nor
 * running gets a fresh one (the migration runner applies nothing twice), up
 * to JOB_ATTEMPTS times, then fails in the run; queued tenants while the
 * queue holds no job at all get theirs again. The run is settled again.
 */
export async function resumeFleet(deps: WorkerDeps, queues: Queues): Promise<number> {
  const run = await openRun(deps.db)
  if (!run) return 0
  let requeued = 0
  const requeue = async (tenantId: string) => {
    await requeueFleetJob(deps.db, run.id, tenantId, run.concurrency)
    deps.log.warn({ runId: run.id, tenantId }, 'fleet migration job lost; tenant requeued')
    requeued++
  }
  for (const item of await listItems(deps.db, run.id, { statuses: ['running'], limit: 1000 })) {
    const row = await lastFleetJob(deps.db, run.id, item.tenant_id)
    if (row && row.relayed_at === null) continue // the relay has not handed it over yet
    const job = row ? await queues.fleet.getJob(jobId(row.id)) : undefined
    if (job && ALIVE.has(await job.getState())) continue
    if (item.attempts < deps.config.jobAttempts) await requeue(item.tenant_id)
    else {
      const error = `the job was lost ${item.attempts} times (workers died running it)`
      await recordOutcome(deps.db, deps.config, run, item.tenant_id, { status: 'failed', failed_version: null, error }, ['running'])
    }
  }
  const counts = await queues.fleet.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'waiting-children')
  if (Object.values(counts).every((n) => n === 0) && !(await unrelayedFleetJobs(deps.db))) {
    for (const item of await listItems(deps.db, run.id, { statuses: ['queued'], limit: 10_000 })) await requeue(item.tenant_id)
  }
  // An outcome recorded just before a crash may not have moved the run on.
  await settle(deps.db, run)
  return requeued
}

/**
 * Deletes what has served its purpose: idempotency keys past their 24 hours,
 * settled webhook deliveries and their attempts, and relayed outbox rows no
 * delivery refers to, once older than HISTORY_RETENTION.
 */
export async function prune(deps: WorkerDeps): Promise<number> {
  const cutoff = new Date(Date.now() - deps.config.historyRetentionMs)
  const keys = await pruneIdempotencyKeys(deps.db)
  const deliveries = await pruneSettledDeliveries(deps.db, cutoff)
  return keys + deliveries + (await pruneOutbox(deps.db, cutoff))
}

const SWEEPS: Record<Sweep, (deps: WorkerDeps, queues: Queues) => Promise<number>> = {
  prune,
  'requeue-stuck': requeueStuck,
  'fleet-resume': resumeFleet,
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
