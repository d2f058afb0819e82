// Webhook delivery. Each event gets one delivery row per subscribed endpoint
// (fan-out); each attempt first claims its row, so duplicate triggers never
// send twice at once. Per endpoint, one tenant's events go out in outbox order:
// a delivery is claimed only when no earlier event of the same tenant is still
// pending for that endpoint, or not yet fanned out.
import { fetch, type Response } from 'undici'
import type { Config } from '../config.js'
import {
  claimDelivery,
  endpointHeadsOfLine,
  eventPayload,
  insertDeliveries,
  lockEvent,
  markDelivered,
  markFailed,
  markFannedOut,
  nextInLine,
  openHeadsOfLine,
  recordAttempt,
  scheduleRetry,
  unfannedEvents,
} from '../db/deliveries.js'
import { readEndpoint, setFailingSince, subscribedEndpointIds, type Endpoint } from '../db/endpoints.js'
import type { Db } from '../db/index.js'
import type { Logger } from '../log.js'
import { webhookDeliveries, webhookEndpointsDisabled } from '../metrics.js'
import { AddressRefusedError, deliveryTransport, literalAddress, refusalMessage, vetAddress } from './address.js'
import { disableEndpoint, isOperatorEndpoint } from './endpoints.js'
import { openSecret, signedHeaders } from './sign.js'

export interface DeliveryDeps {
  db: Db
  config: Config
  masterKey: Buffer
  log: Logger
  /** undici's fetch unless given; it is handed the vetting dispatcher. */
  fetch?: typeof fetch
}

/** Deliveries to trigger, now or at a time. */
export type FollowUp = { deliveryId: string; at?: Date }

/** Creates the delivery rows of one event. Safe to run twice. */
export async function fanOut(db: Db, outboxId: string): Promise<FollowUp[]> {
  return db.transaction().execute(async (trx) => {
    const event = await lockEvent(trx, outboxId)
    if (!event || event.kind !== 'webhook' || event.fanned_out_at !== null) return []
    // Disabled endpoints get their deliveries too: held, not attempted, until enabled again.
    const created = await insertDeliveries(trx, event, await subscribedEndpointIds(trx, event.name, event.tenant_id))
    await markFannedOut(trx, event.id)
    return created.map((id) => ({ deliveryId: id }))
  })
}

/** The next pending delivery in the same line (endpoint, tenant), if any. */
async function followInLine(db: Db, endpointId: string, tenantId: string | null): Promise<FollowUp[]> {
  const next = await nextInLine(db, endpointId, tenantId)
  return next ? [{ deliveryId: next.id, at: next.next_attempt_at }] : []
}

/** Delay before attempt `n + 1` after `n` failures: the schedule, ±10% jitter, or Retry-After. */
function retryDelay(config: Config, failures: number, retryAfter: string | null): number | undefined {
  const base = config.webhookRetryScheduleMs[failures - 1]
  if (base === undefined) return undefined
  const seconds = retryAfter === null ? NaN : Number(retryAfter)
  if (Number.isFinite(seconds) && seconds >= 0) return Math.min(seconds * 1000, 24 * 3_600_000)
  const date = retryAfter === null ? NaN : Date.parse(retryAfter)
  if (Number.isFinite(date)) return Math.min(Math.max(date - Date.now(), 0), 24 * 3_600_000)
  return Math.round(base * (0.9 + Math.random() * 0.2))
}

/** One attempt of one delivery. Returns the deliveries to trigger next. */
export async function deliver(deps: DeliveryDeps, deliveryId: string): Promise<FollowUp[]> {
  const { db, config, log } = deps
  const claimed = await claimDelivery(db, deliveryId, config.webhookTimeoutMs + 30_000)
  if (!claimed) return []
  const endpoint = await readEndpoint(db, claimed.endpoint_id)
  const body = JSON.stringify(await eventPayload(db, claimed.event_id))
  const headers = signedHeaders(openSecret(deps.masterKey, endpoint.id, endpoint.secret), `msg_${claimed.event_id}`, body)

  const started = Date.now()
  const { status, retryAfter, excerpt, error } = await send(deps, endpoint, body, headers)
  const duration = Date.now() - started
  await recordAttempt(db, { delivery_id: claimed.id, status_code: status, duration_ms: duration, response_excerpt: excerpt, error })
  const attempts = claimed.attempts + 1
  const dlog = log.child({ deliveryId: claimed.id, endpointId: endpoint.id, eventId: claimed.event_id, attempt: attempts })

  if (status !== null && status >= 200 && status < 300) {
    await markDelivered(db, claimed, attempts, status)
    await setFailingSince(db, endpoint.id, null)
    webhookDeliveries.inc({ outcome: 'succeeded' })
    dlog.debug({ status, duration }, 'webhook delivered')
    return followInLine(db, endpoint.id, claimed.tenant_id)
  }

  const reason = error ?? `HTTP ${status}`
  if (status === 410) {
    if (await disableEndpoint(db, endpoint.id, 'the endpoint answered 410 Gone')) {
      webhookEndpointsDisabled.inc({ reason: 'gone' })
      dlog.warn({ url: endpoint.url }, 'webhook endpoint disabled: it answered 410 Gone')
    }
    await markFailed(db, claimed, { attempts, statusCode: status, error: reason })
    webhookDeliveries.inc({ outcome: 'gone' })
    return []
  }

  const failingSince = endpoint.failing_since ?? new Date()
  if (!endpoint.failing_since) await setFailingSince(db, endpoint.id, failingSince)
  const delay = retryDelay(config, attempts, retryAfter)
  if (delay !== undefined) {
    const at = new Date(Date.now() + delay)
    await scheduleRetry(db, claimed, { attempts, at, statusCode: status, error: reason })
    webhookDeliveries.inc({ outcome: 'retrying' })
    dlog.info({ status, error, retryAt: at }, 'webhook attempt failed; will retry')
    return [{ deliveryId: claimed.id, at }]
  }

  // The schedule is spent: this event is given up and the line moves on. An
  // endpoint failing for too long is disabled first, while this delivery still
  // holds the line, so that no later event slips out in between.
  let disabled = false
  if (Date.now() - failingSince.getTime() >= config.webhookDisableAfterMs) {
    const days = Math.round(config.webhookDisableAfterMs / 86_400_000)
    disabled = await disableEndpoint(db, endpoint.id, `failing since ${failingSince.toISOString()} (WEBHOOK_DISABLE_AFTER ${days}d)`)
    if (disabled) {
      webhookEndpointsDisabled.inc({ reason: 'failing' })
      dlog.warn({ url: endpoint.url, failingSince }, 'webhook endpoint disabled: failing beyond WEBHOOK_DISABLE_AFTER')
    }
  }
  await markFailed(db, claimed, { attempts, statusCode: status, error: reason })
  webhookDeliveries.inc({ outcome: 'failed' })
  dlog.warn({ status, error }, 'webhook delivery given up after the last scheduled attempt')
  return disabled ? [] : followInLine(db, endpoint.id, claimed.tenant_id)
}

interface Outcome {
  status: number | null
  retryAfter: string | null
  excerpt: string | null
  error: string | null
}

/**
 * One POST. Only public addresses, or those WEBHOOK_ALLOWED_NETWORKS opens, are
 * reached: an IP literal is vetted here, a name by the Agent's lookup at
 * connect time. A refused address fails the attempt as a network error would,
 * before anything is sent. BILLING_WEBHOOK_URL's endpoint goes anywhere.
 */
async function send(deps: DeliveryDeps, endpoint: Endpoint, body: string, headers: Record<string, string>): Promise<Outcome> {
  const { config } = deps
  const operators = isOperatorEndpoint(endpoint, config.billingWebhook.url)
  const { policy, agent } = deliveryTransport(config.webhookAllowedNetworks)
  const literal = operators ? undefined : literalAddress(new URL(endpoint.url).hostname)
  const refusal = literal === undefined ? undefined : vetAddress(policy, literal)
  if (refusal) return { status: null, retryAfter: null, excerpt: null, error: refusalMessage(refusal) }
  try {
    const res = await (deps.fetch ?? fetch)(endpoint.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'user-agent': 'Landlord-Webhooks/1', ...headers },
      body,
      redirect: 'manual', // a redirect is a failure: billing must fix the URL, not us follow it
      signal: AbortSignal.timeout(config.webhookTimeoutMs),
      ...(operators ? {} : { dispatcher: agent }),
    })
    return { status: res.status, retryAfter: res.headers.get('retry-after'), excerpt: await readExcerpt(res, 1024), error: null }
  } catch (err) {
    return { status: null, retryAfter: null, excerpt: null, error: describeError(err) }
  }
}

/** fetch rejects with "fetch failed": the cause says what happened (a refused address, ECONNREFUSED, ...). */
function describeError(err: unknown): string {
  if (!(err instanceof Error)) return String(err)
  if (err.cause instanceof AddressRefusedError) return err.cause.message
  const cause = err.cause instanceof Error ? ` (${err.cause.message})` : ''
  return `${err.name}: ${err.message}${cause}`
}

/** At most `max` bytes of the body: a receiver streaming megabytes costs us nothing. */
async function readExcerpt(res: Response, max: number): Promise<string> {
  if (!res.body) return ''
  const reader = res.body.getReader()
  const chunks: Uint8Array[] = []
  let size = 0
  try {
    while (size < max) {
      const { done, value } = await reader.read()
      if (done) break
      chunks.push(value)
      size += value.length
    }
  } catch {
    // A body cut short still leaves what was read.
  } finally {
    await reader.cancel().catch(() => {})
  }
  return Buffer.concat(chunks).subarray(0, max).toString('utf8')
}

/**
 * What a lost trigger left behind: events relayed but not fanned out, and due
 * deliveries at the head of their line. Run by the maintenance schedule.
 */
export async function sweepWebhooks(db: Db): Promise<{ events: string[]; deliveries: FollowUp[] }> {
  const events = await unfannedEvents(db)
  const due = await openHeadsOfLine(db)
  return { events, deliveries: due.map((d) => ({ deliveryId: d.id, at: d.next_attempt_at })) }
}

/** Pending deliveries of one endpoint, one per line: used when an endpoint is enabled again. */
export async function headsOfLine(db: Db, endpointId: string): Promise<FollowUp[]> {
  return (await endpointHeadsOfLine(db, endpointId)).map((id) => ({ deliveryId: id }))
}
