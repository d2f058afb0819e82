// The step worker: one job per transitional state, dispatched by step name
// (the statechart says which state each step works for).
// A job first checks it is still wanted (the tenant is still in the state and
// version that queued it), runs its step, then reports back through
// transition.ts. After the last attempt, or on a permanent error, the tenant
// is moved to `failed` with the error visible in its status.
import { UnrecoverableError, type Job } from 'bullmq'
import type { Tenant } from '../db/schema.js'
import { findTenant } from '../db/tenants.js'
import type { Step } from '../lifecycle/events.js'
import { stateOf } from '../lifecycle/states.js'
import { applyEvent } from '../lifecycle/transition.js'
import type { Logger } from '../log.js'
import { lifecycleJobs } from '../metrics.js'
import type { StepContext, StepHandler, WorkerDeps } from './context.js'
import { LIFECYCLE_QUEUE, createWorker, type LifecycleJobData } from './queues.js'
import { fence, unfence } from './workers/fence.js'
import { provision } from './workers/provision.js'
import { rotate } from './workers/rotate.js'
import { wipe } from './workers/wipe.js'

export const stepHandlers: Record<Step, StepHandler> = {
  provision,
  suspend: fence,
  hibernate: fence,
  decommission: fence,
  resume: unfence,
  wake: unfence,
  restore: unfence,
  wipe,
}

/** Jobs that act on a tenant without moving its state. */
const TASKS: Record<string, (deps: WorkerDeps, tenant: Tenant, job: Job<LifecycleJobData>, log: Logger) => Promise<unknown>> = {
  rotate,
}

export async function runLifecycleJob(deps: WorkerDeps, job: Job<LifecycleJobData>): Promise<string> {
  const log = deps.log.child({ jobId: job.id, tenantId: job.data.tenantId, step: job.name })
  const task = TASKS[job.name]
  if (task) {
    const tenant = await findTenant(deps.db, job.data.tenantId)
    if (!tenant || tenant.state === 'wiped') return 'skipped'
    await task(deps, tenant, job, log)
    return 'done'
  }
  const step = job.name as Step
  const state = stateOf(step)
  const handler = stepHandlers[step]
  if (!state || !handler) throw new UnrecoverableError(`unknown lifecycle step "${job.name}"`)

  const tenant = await findTenant(deps.db, job.data.tenantId)
  if (!tenant || tenant.state !== state || tenant.version !== job.data.version) {
    log.info({ state: tenant?.state, version: tenant?.version }, 'job no longer wanted; skipped')
    lifecycleJobs.inc({ step, outcome: 'skipped' })
    return 'skipped'
  }

  const done = new Set(job.data.done ?? [])
  const ctx: StepContext = {
    deps,
    tenant,
    job,
    log,
    checkpoint: async (name, fn) => {
      if (done.has(name)) return
      await fn()
      done.add(name)
      await job.updateData({ ...job.data, done: [...done] })
    },
  }

  try {
    const result = (await handler(ctx)) ?? {}
    await applyEvent(deps.db, tenant.id, { type: 'EFFECTS_APPLIED', ...result }, { actor: 'worker', expectState: state, expectVersion: job.data.version })
    log.info('step applied')
    lifecycleJobs.inc({ step, outcome: 'applied' })
    return 'applied'
  } catch (err) {
    const final = err instanceof UnrecoverableError || job.attemptsMade + 1 >= (job.opts.attempts ?? 1)
    const message = err instanceof Error ? err.message : String(err)
    log.warn({ err, attempt: job.attemptsMade + 1, final }, 'step failed')
    lifecycleJobs.inc({ step, outcome: final ? 'failed' : 'retrying' })
    if (final) {
      await applyEvent(
        deps.db,
        tenant.id,
        { type: 'EFFECTS_FAILED', error: message },
        { actor: 'worker', expectState: state, expectVersion: job.data.version, data: { step, attempts: job.attemptsMade + 1 } },
      )
    }
    throw err
  }
}

export function startLifecycleWorker(deps: WorkerDeps) {
  return createWorker<LifecycleJobData>(deps.config, LIFECYCLE_QUEUE, (job) => runLifecycleJob(deps, job))
}
