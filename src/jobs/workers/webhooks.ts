// The webhook worker: `fanout` turns an event into deliveries, `deliver` makes
// one attempt, `dispatch` wakes deliveries (after a retry request or when an
// endpoint is enabled again). Every follow-up goes back on the queue, delayed
// to its attempt time, so a slow endpoint never holds up another.
import type { Job, Queue } from 'bullmq'
import { deliver, fanOut, headsOfLine, sweepWebhooks, type DeliveryDeps, type FollowUp } from '../../webhooks/deliver.js'
import { WEBHOOK_QUEUE, createWorker } from '../queues.js'

export interface WebhookJobData {
  outboxId?: string
  deliveryId?: string
  endpointId?: string
}

export async function enqueueDeliveries(queue: Queue, followUps: FollowUp[]): Promise<void> {
  if (followUps.length === 0) return
  await queue.addBulk(
    followUps.map(({ deliveryId, at }) => {
      const delay = at ? Math.max(at.getTime() - Date.now(), 0) : 0
      // Same delivery and time: one trigger while it waits. Finished triggers,
      // failed ones included, are removed at once, so a later one is never
      // swallowed by a kept job of the same id. The claim stops double sends.
      return {
        name: 'deliver',
        data: { deliveryId },
        opts: { jobId: `wd-${deliveryId}-${at?.getTime() ?? 0}`, delay, removeOnComplete: true, removeOnFail: true },
      }
    }),
  )
}

export async function runWebhookJob(deps: DeliveryDeps, queue: Queue, job: Job<WebhookJobData>): Promise<number> {
  const { outboxId, deliveryId, endpointId } = job.data
  let followUps: FollowUp[] = []
  if (job.name === 'fanout' && outboxId) followUps = await fanOut(deps.db, outboxId)
  else if (job.name === 'deliver' && deliveryId) followUps = await deliver(deps, deliveryId)
  else if (job.name === 'dispatch' && deliveryId) followUps = [{ deliveryId }]
  else if (job.name === 'dispatch' && endpointId) followUps = await headsOfLine(deps.db, endpointId)
  await enqueueDeliveries(queue, followUps)
  return followUps.length
}

/** Lost triggers are found again: run by the maintenance schedule. */
export async function sweepAndEnqueue(deps: DeliveryDeps, queue: Queue): Promise<number> {
  const { events, deliveries } = await sweepWebhooks(deps.db)
  for (const id of events) await enqueueDeliveries(queue, await fanOut(deps.db, id))
  await enqueueDeliveries(queue, deliveries)
  return events.length + deliveries.length
}

export function startWebhookWorker(deps: DeliveryDeps, queue: Queue) {
  return createWorker<WebhookJobData>(deps.config, WEBHOOK_QUEUE, (job) => runWebhookJob(deps, queue, job), {
    // Deliveries wait on HTTP, not CPU.
    concurrency: deps.config.workerConcurrency * 4,
  })
}
