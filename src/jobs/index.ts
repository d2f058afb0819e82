// The worker side of a process: the outbox relay, the lifecycle, webhook and
// maintenance workers, and the maintenance schedules. Closing waits for the
// jobs in flight; anything unfinished is retried by another worker.
import type { Worker } from 'bullmq'
import type { Config } from '../config.js'
import type { WorkerDeps } from './context.js'
import { startLifecycleWorker } from './steps.js'
import { scheduleMaintenance, startMaintenanceWorker } from './maintenance.js'
import type { Queues } from './queues.js'
import { OutboxRelay } from './relay.js'
import { startWebhookWorker } from './workers/webhooks.js'

export interface RunningWorkers {
  relay: OutboxRelay
  lifecycle: Worker
  webhooks: Worker
  maintenance: Worker
  close(): Promise<void>
}

export async function startWorkers(deps: WorkerDeps & { config: Config }, queues: Queues, opts: { relayPollMs?: number } = {}): Promise<RunningWorkers> {
  const { db, config, log } = deps
  const relay = new OutboxRelay({ db, databaseUrl: config.databaseUrl, queues, log, pollMs: opts.relayPollMs })
  await relay.start()
  const lifecycle = startLifecycleWorker(deps)
  const webhooks = startWebhookWorker(deps, queues.webhooks)
  await scheduleMaintenance(deps, queues)
  const maintenance = startMaintenanceWorker(deps, queues)
  for (const [name, worker] of [['lifecycle', lifecycle], ['webhooks', webhooks], ['maintenance', maintenance]] as const) {
    worker.on('error', (err) => log.error({ err, worker: name }, 'worker error'))
  }
  await Promise.all([lifecycle.waitUntilReady(), webhooks.waitUntilReady(), maintenance.waitUntilReady()])
  return {
    relay,
    lifecycle,
    webhooks,
    maintenance,
    async close() {
      await Promise.all([lifecycle.close(), webhooks.close(), maintenance.close()])
      await relay.stop()
    },
  }
}
