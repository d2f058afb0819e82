// Scheduled sweeps, as BullMQ job schedulers: one schedule per sweep however
// many workers run, and each sweep is safe to run twice.
//  - reap-leases: revoke leases past their expiry (drop their roles)
//  - expire-retention: wipe decommissioned tenants whose retention ran out (unless held)
//  - hibernate-idle: hibernate tenants idle longer than HIBERNATE_AFTER, idle as
//    Postgres sees it (no client session, none opened), not only Landlord's API
//  - requeue-stuck: hand a fresh job to a tenant whose transitional state outlived its job
//  - webhook-sweep: re-trigger webhook fan-outs and deliveries whose trigger was lost
//  - prune: delete expired idempotency keys, old outbox rows and delivery logs
import type { Job } from 'bullmq'
import { sql } from 'kysely'
import { LandlordError } from '../errors.js'
import { TRANSITIONAL_STATES } from '../lifecycle/events.js'
import { appendHistory, applyEvent, jobRow, writeOutbox } from '../lifecycle/transition.js'
import { jobId } from './relay.js'
import type { WorkerDeps } from './lifecycle.js'
import { createWorker, type Queues } from './queues.js'
import { sweepAndEnqueue } from './workers/webhooks.js'

export const MAINTENANCE_QUEUE = 'maintenance'
export type Sweep = 'reap-leases' | 'expire-retention' | 'hibernate-idle' | 'webhook-sweep' | 'requeue-stuck' | 'prune'

export async function scheduleMaintenance(deps: WorkerDeps, queues: Queues): Promise<void> {
  const every = deps.config.maintenanceEveryMs
  const sweeps: Sweep[] = ['reap-leases', 'expire-retention', 'webhook-sweep', 'requeue-stuck', 'prune']
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
 * Idle as Postgres sees it: no client session open on the tenant's database
 * now, and none opened since the previous sweep (pg_stat_database.sessions).
 * Autovacuum and other background workers are not clients and do not count,
 * nor do transaction counters, which autovacuum moves on an idle database.
 * A tenant quiet for HIBERNATE_AFTER is hibernated.
 */
export async function hibernateIdle(deps: WorkerDeps): Promise<number> {
  const after = deps.config.hibernateAfterMs
  if (after === undefined) return 0
  const tenants = await deps.db.selectFrom('tenants').selectAll().where('state', '=', 'active').execute()
  if (tenants.length === 0) return 0
  const stats = await deps.cluster.query<{ datname: string; clients: number; sessions: string }>(
    `SELECT d.datname, d.sessions::text AS sessions,
            (SELECT count(*) FROM pg_stat_activity a WHERE a.datid = d.datid AND a.backend_type = 'client backend')::int AS clients
       FROM pg_stat_database d WHERE d.datname = ANY($1)`,
    [tenants.map((t) => t.database_name)],
  )
  const byName = new Map(stats.rows.map((r) => [r.datname, r]))
  const busy: Array<{ id: string; sessions: string }> = []
  const quiet: typeof tenants = []
  for (const tenant of tenants) {
    const s = byName.get(tenant.database_name)
    if (!s) continue
    if (s.clients > 0 || s.sessions !== tenant.activity_counter) busy.push({ id: tenant.id, sessions: s.sessions })
    else if (tenant.last_active_at.getTime() + after <= Date.now()) quiet.push(tenant)
  }
  // One statement for every tenant in use, however many there are.
  if (busy.length > 0) {
    await sql`
      UPDATE tenants t SET activity_counter = v.sessions::bigint, last_active_at = now()
        FROM unnest(${busy.map((b) => b.id)}::uuid[], ${busy.map((b) => b.sessions)}::text[]) AS v(id, sessions)
       WHERE t.id = v.id`.execute(deps.db)
  }
  let hibernated = 0
  for (const tenant of quiet) {
    const t = await applyEvent(deps.db, tenant.id, { type: 'HIBERNATE' }, {
      actor: 'scheduler',
      expectState: 'active',
      // Someone asked for credentials meanwhile: not idle after all.
      check: (locked) => {
        if (locked.last_active_at.getTime() !== tenant.last_active_at.getTime()) throw new LandlordError('LANDLORD_NOT_IDLE', 409, 'Not idle', 'active again')
      },
      data: { reason: 'idle', idle_since: tenant.last_active_at.toISOString() },
    }).catch((err: unknown) => {
      if (err instanceof LandlordError && err.code === 'LANDLORD_NOT_IDLE') return undefined
      throw err
    })
    if (t) hibernated++
  }
  return hibernated
}

const ALIVE = new Set(['waiting', 'active', 'delayed', 'prioritized', 'waiting-children'])

/**
 * A tenant whose transitional state outlived its job would wait forever: the
 * job was lost with Redis, or BullMQ failed it (stalled twice) without the
 * processor reporting. After STUCK_AFTER it is handed a fresh job, through
 * the outbox like any other; the step is idempotent and resumes.
 */
export async function requeueStuck(deps: WorkerDeps, queues: Queues): Promise<number> {
  const stuck = await deps.db
    .selectFrom('tenants')
    .selectAll()
    .where('state', 'in', [...TRANSITIONAL_STATES])
    .where('updated_at', '<', new Date(Date.now() - deps.config.stuckAfterMs))
    .limit(100)
    .execute()
  let requeued = 0
  for (const tenant of stuck) {
    const rows = await deps.db
      .selectFrom('outbox')
      .select(['id', 'name', 'relayed_at'])
      .where('tenant_id', '=', tenant.id)
      .where('kind', '=', 'job')
      .where(sql<boolean>`(payload->>'version')::int = ${tenant.version}`)
      .orderBy('seq', 'desc')
      .execute()
    const step = rows.find((r) => r.name === tenant.operation) ?? rows[0]
    if (step && step.relayed_at === null) continue // the relay has not handed it over yet
    const job = step ? await queues.lifecycle.getJob(jobId(step.id)) : undefined
    if (job && ALIVE.has(await job.getState())) continue
    const name = step?.name ?? tenant.operation
    if (!name) continue
    await deps.db.transaction().execute(async (trx) => {
      const locked = await trx.selectFrom('tenants').select(['version']).where('id', '=', tenant.id).forUpdate().executeTakeFirst()
      if (locked?.version !== tenant.version) return // it moved on meanwhile
      // A new version: a job of the old run that turns up after all is no longer wanted.
      const bumped = await trx
        .updateTable('tenants')
        .set({ version: tenant.version + 1, updated_at: sql<Date>`now()` })
        .where('id', '=', tenant.id)
        .returningAll()
        .executeTakeFirstOrThrow()
      await appendHistory(trx, tenant, 'JOB_REQUEUED', 'scheduler', { step: name, previous_job: step ? jobId(step.id) : null })
      await writeOutbox(trx, [jobRow(bumped, name)])
    })
    deps.log.warn({ tenantId: tenant.id, state: tenant.state, step: name }, 'tenant stuck without a live job; job requeued')
    requeued++
  }
  return requeued
}

/**
 * Deletes what has served its purpose: idempotency keys past their 24 hours,
 * settled webhook deliveries and their attempts, and relayed outbox rows no
 * delivery refers to, once older than HISTORY_RETENTION. Tenant history is
 * evidence and is never pruned. Batches of 1000 keep each statement short.
 */
export async function prune(deps: WorkerDeps): Promise<number> {
  const { db } = deps
  const cutoff = new Date(Date.now() - deps.config.historyRetentionMs)
  const keys = await db.deleteFrom('idempotency_keys').where('created_at', '<', sql<Date>`now() - interval '24 hours'`).executeTakeFirst()
  const settled = db
    .selectFrom('webhook_deliveries')
    .select('id')
    .where('status', 'in', ['succeeded', 'failed'])
    .where('created_at', '<', cutoff)
    .limit(1000)
  const ids = (await settled.execute()).map((d) => d.id)
  if (ids.length > 0) {
    await db.deleteFrom('webhook_attempts').where('delivery_id', 'in', ids).execute()
    await db.deleteFrom('webhook_deliveries').where('id', 'in', ids).execute()
  }
  const outbox = await sql`
    DELETE FROM outbox WHERE id IN (
      SELECT o.id FROM outbox o
       WHERE o.relayed_at IS NOT NULL AND o.created_at < ${cutoff}
         AND (o.kind <> 'webhook' OR o.fanned_out_at IS NOT NULL)
         AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = o.id)
       LIMIT 1000)`.execute(db)
  return Number(keys.numDeletedRows) + ids.length + Number(outbox.numAffectedRows ?? 0n)
}

const SWEEPS: Record<Sweep, (deps: WorkerDeps, queues: Queues) => Promise<number>> = {
  prune,
  'requeue-stuck': requeueStuck,
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
