// The worker side of a process: the outbox relay, the lifecycle, webhook,
// fleet migration and maintenance workers, and the maintenance schedules. Closing waits for the
// jobs in flight; anything unfinished is retried by another worker.
import type { Worker } from 'bullmq'
import type { Config } from '../config.js'
import type { WorkerDeps } from './context.js'
import { startLifecycleWorker } from './steps.js'
import { scheduleMaintenance, startMaintenanceWorker } from './maintenance.js'
import type { Queues } from './queues.js'
import { OutboxRelay } from './relay.js'
import { startFleetWorker } from './workers/migrate.js'
import { startWebhookWorker } from './workers/webhooks.js'

export interface RunningWorkers {
  relay: OutboxRelay
  lifecycle: Worker
  webhooks: Worker
  fleet: Worker
  maintenance: Worker
  close(): Promise<void>
}

export async function startWorkers(deps: WorkerDeps & { config: Config }, queues: Queues, opts: { relayPollMs?: number } = {}): Promise<RunningWorkers> {
  const { db, config, log } = deps
  const relay = new OutboxRelay({ db, databaseUrl: config.databaseUrl, queues, log, pollMs: opts.relayPollMs })
  await relay.start()
  const lifecycle = startLifecycleWorker(deps)
  const webhooks = startWebhookWorker(deps, queues.webhooks)
  const fleet = startFleetWorker(deps)
  await scheduleMaintenance(deps, queues)
  const maintenance = startMaintenanceWorker(deps, queues)
  const workers = { lifecycle, webhooks, fleet, maintenance }
  for (const [name, worker] of Object.entries(workers)) {
    worker.on('error', (err) => log.error({ err, worker: name }, 'worker error'))
  }
  await Promise.all(Object.values(workers).map((w) => w.waitUntilReady()))
  return {
    relay,
    ...workers,
    async close() {
      await Promise.all(Object.values(workers).map((w) => w.close()))
      await relay.stop()
    },
  }
}
