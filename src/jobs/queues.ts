// Every BullMQ queue and worker is built here, so connections, prefixes and
// retry policy are decided in one place.
import { Queue, Worker, type Processor, type WorkerOptions } from 'bullmq'
import { Redis } from 'ioredis'
import type { Config } from '../config.js'

export const LIFECYCLE_QUEUE = 'lifecycle'
export const WEBHOOK_QUEUE = 'webhooks'
export const FLEET_QUEUE = 'fleet-migrations'

/** One tenant of a fleet migration run. */
export interface FleetJobData {
  runId: string
  tenantId: string
  /** The run's concurrency: the queue's global concurrency while it runs. */
  concurrency?: number
}

export interface LifecycleJobData {
  tenantId: string
  /** The tenant's version right after the transition that queued this job. */
  version: number
  /** Steps already done, for a retry to resume where the last attempt stopped. */
  done?: string[]
  /** For `rotate`: leases issued up to this instant are revoked. */
  requestedAt?: string
  /** For `wipe`: what earlier attempts destroyed, for the receipt. */
  receipt?: unknown
}

export interface Queues {
  lifecycle: Queue<LifecycleJobData>
  webhooks: Queue
  fleet: Queue<FleetJobData>
  maintenance: Queue
  close(): Promise<void>
}

/** Producers fail fast: a request must not hang while Redis is away. */
export function createProducerConnection(config: Config): Redis {
  return new Redis(config.redisUrl, { maxRetriesPerRequest: 1, enableOfflineQueue: false, lazyConnect: true })
}

export function createQueues(config: Config, connection: Redis): Queues {
  const common = { connection, prefix: config.queuePrefix }
  // Kept jobs dedupe re-relayed outbox rows (same job id), so keep them a day.
  const kept = { removeOnComplete: { age: 24 * 3600, count: 10_000 }, removeOnFail: { age: 7 * 24 * 3600 } }
  // Lifecycle steps and fleet migrations retry with backoff, up to JOB_ATTEMPTS.
  const retried = { ...kept, attempts: config.jobAttempts, backoff: { type: 'exponential', delay: config.jobBackoffMs } }
  const lifecycle = new Queue<LifecycleJobData>(LIFECYCLE_QUEUE, { ...common, defaultJobOptions: retried })
  const webhooks = new Queue(WEBHOOK_QUEUE, { ...common, defaultJobOptions: kept })
  const fleet = new Queue<FleetJobData>(FLEET_QUEUE, { ...common, defaultJobOptions: retried })
  const maintenance = new Queue('maintenance', common)
  return {
    lifecycle,
    webhooks,
    fleet,
    maintenance,
    async close() {
      await Promise.all([lifecycle.close(), webhooks.close(), fleet.close(), maintenance.close()])
    },
  }
}

export function createWorker<T>(
  config: Config,
  queue: string,
  processor: Processor<T>,
  opts: Partial<WorkerOptions> = {},
): Worker<T> {
  // Workers block on Redis: they need maxRetriesPerRequest null and their own connection.
  const connection = new Redis(config.redisUrl, { maxRetriesPerRequest: null })
  const worker = new Worker<T>(queue, processor, {
    connection,
    prefix: config.queuePrefix,
    concurrency: config.workerConcurrency,
    // A worker that died holds its jobs this long; then the stalled check hands them to another.
    lockDuration: config.jobLockMs,
    stalledInterval: config.jobLockMs,
    ...opts,
  })
  worker.on('closed', () => connection.disconnect())
  return worker
}
