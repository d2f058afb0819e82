// One tenant of a fleet migration: claim it, decide from the registry whether
// a connection is needed at all, migrate (or dry-run) through the same
// hardened runner as provisioning, and record the outcome. A lost connection
// or a lock wait is retried by BullMQ; a failing migration is the tenant's
// outcome, never a change of its lifecycle state.
import { UnrecoverableError, type Job } from 'bullmq'
import { findTenant } from '../../db/tenants.js'
import { claimTenant, decideFromRegistry, filesOfRun, recordOutcome, type Outcome } from '../../fleet/outcomes.js'
// The scheduler bounds the tenants in flight per run; a process takes as many as a run may have.
import { MAX_CONCURRENCY } from '../../fleet/runs.js'
import { fleetMigrations } from '../../metrics.js'
import { MigrationError } from '../../tenancy/migrations.js'
import type { WorkerDeps } from '../context.js'
import { FLEET_QUEUE, createWorker, type FleetJobData } from '../queues.js'
import { migrateAsOwner } from './provision.js'


export async function runFleetJob(deps: WorkerDeps, job: Job<FleetJobData>): Promise<string> {
  const { runId, tenantId } = job.data
  const log = deps.log.child({ jobId: job.id, runId, tenantId })
  const claimed = await claimTenant(deps.db, runId, tenantId)
  if (!claimed) return 'not wanted'
  const { run } = claimed
  const tenant = await findTenant(deps.db, tenantId)
  let outcome = decideFromRegistry(run, tenant)
  if (!outcome && tenant) {
    try {
      const migrations = await filesOfRun(deps.config, run)
      const version = await migrateAsOwner(deps.cluster, deps.config.tenantClusterUrl, tenant, migrations, {
        target: run.target_version,
        dryRun: run.dry_run,
        statementTimeoutMs: deps.config.tenantMigrationTimeoutMs,
      })
      outcome = { status: 'succeeded', to_version: version }
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err)
      const final = err instanceof MigrationError || err instanceof UnrecoverableError || job.attemptsMade + 1 >= (job.opts.attempts ?? 1)
      log.warn({ err, attempt: job.attemptsMade + 1, final }, 'tenant migration failed')
      if (!final) throw err
      outcome = { status: 'failed', failed_version: err instanceof MigrationError ? err.version : null, error: message } satisfies Outcome
    }
  }
  await recordOutcome(deps.db, deps.config, run, tenantId, outcome!)
  fleetMigrations.inc({ outcome: outcome!.status })
  log.info({ outcome: outcome!.status }, 'tenant migration recorded')
  return outcome!.status
}

export function startFleetWorker(deps: WorkerDeps) {
  return createWorker<FleetJobData>(deps.config, FLEET_QUEUE, (job) => runFleetJob(deps, job), { concurrency: MAX_CONCURRENCY })
}
