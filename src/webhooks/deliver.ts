// Webhook delivery. Each event gets one delivery row per subscribed endpoint
// (fan-out); each attempt first claims its row, so duplicate triggers never
// send twice at once. Per endpoint, one tenant's events go out in outbox order:
// a delivery is claimed only when no earlier event of the same tenant is still
// pending for that endpoint, or not yet fanned out.
import { sql } from 'kysely'
import { fetch, type Response } from 'undici'
import type { Config } from '../config.js'
import type { Db } from '../db/index.js'
import type { Logger } from '../log.js'
import { webhookDeliveries, webhookEndpointsDisabled } from '../metrics.js'
import { AddressRefusedError, deliveryTransport, literalAddress, refusalMessage, vetAddress } from './address.js'
import { disableEndpoint, isOperatorEndpoint, type Endpoint } from './endpoints.js'
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
    const event = await trx.selectFrom('outbox').selectAll().where('id', '=', outboxId).forUpdate().executeTakeFirst()
    if (!event || event.kind !== 'webhook' || event.fanned_out_at !== null) return []
    // Disabled endpoints get their deliveries too: held, not attempted, until enabled again.
    const endpoints = await trx
      .selectFrom('webhook_endpoints')
      .select('id')
      .where('deleted_at', 'is', null)
      .where((eb) => eb.or([eb('event_types', 'is', null), eb(sql.val(event.name), '=', eb.fn.any('event_types'))]))
      .execute()
    const created = endpoints.length
      ? await trx
          .insertInto('webhook_deliveries')
          .values(
            endpoints.map((e) => ({
              endpoint_id: e.id,
              event_id: event.id,
              event_type: event.name,
              tenant_id: event.tenant_id,
              seq: event.seq,
            })),
          )
          .onConflict((oc) => oc.columns(['endpoint_id', 'event_id']).doNothing())
          .returning('id')
          .execute()
      : []
    await trx.updateTable('outbox').set({ fanned_out_at: sql<Date>`now()` }).where('id', '=', event.id).execute()
    return created.map((d) => ({ deliveryId: d.id }))
  })
}

/** Claims a due delivery at the head of its line, or returns undefined. */
async function claim(db: Db, id: string, lockMs: number) {
  const result = await sql<{
    id: string
    endpoint_id: string
    event_id: string
    tenant_id: string | null
    attempts: number
    seq: string
    claim_token: string
  }>`
    UPDATE webhook_deliveries d
       SET status = 'delivering', locked_until = now() + ${`${lockMs} milliseconds`}::interval, claim_token = gen_random_uuid()
     WHERE d.id = ${id}
       AND (d.status = 'pending' OR (d.status = 'delivering' AND d.locked_until < now()))
       AND d.next_attempt_at <= now()
       AND EXISTS (SELECT 1 FROM webhook_endpoints e WHERE e.id = d.endpoint_id AND e.enabled AND e.deleted_at IS NULL)
       AND NOT EXISTS (
             SELECT 1 FROM webhook_deliveries p
              WHERE p.endpoint_id = d.endpoint_id AND p.tenant_id IS NOT DISTINCT FROM d.tenant_id
                AND p.seq < d.seq AND p.status IN ('pending', 'delivering'))
       AND NOT EXISTS (
             SELECT 1 FROM outbox o
              WHERE o.kind = 'webhook' AND o.tenant_id IS NOT DISTINCT FROM d.tenant_id
                AND o.seq < d.seq AND o.fanned_out_at IS NULL)
    RETURNING d.id, d.endpoint_id, d.event_id, d.tenant_id, d.attempts, d.seq, d.claim_token`.execute(db)
  return result.rows[0]
}

/** The next pending delivery in the same line (endpoint, tenant), if any. */
async function nextInLine(db: Db, endpointId: string, tenantId: string | null): Promise<FollowUp[]> {
  let q = db
    .selectFrom('webhook_deliveries')
    .select(['id', 'next_attempt_at'])
    .where('endpoint_id', '=', endpointId)
    .where('status', '=', 'pending')
    .orderBy('seq')
    .limit(1)
  q = tenantId === null ? q.where('tenant_id', 'is', null) : q.where('tenant_id', '=', tenantId)
  const next = await q.executeTakeFirst()
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
  const claimed = await claim(db, deliveryId, config.webhookTimeoutMs + 30_000)
  if (!claimed) return []
  const endpoint = (await db.selectFrom('webhook_endpoints').selectAll().where('id', '=', claimed.endpoint_id).executeTakeFirstOrThrow())
  const event = await db.selectFrom('outbox').select('payload').where('id', '=', claimed.event_id).executeTakeFirstOrThrow()
  const body = JSON.stringify(event.payload)
  const headers = signedHeaders(openSecret(deps.masterKey, endpoint.id, endpoint.secret), `msg_${claimed.event_id}`, body)

  const started = Date.now()
  const { status, retryAfter, excerpt, error } = await send(deps, endpoint, body, headers)
  const duration = Date.now() - started
  await db.insertInto('webhook_attempts').values({ delivery_id: claimed.id, status_code: status, duration_ms: duration, response_excerpt: excerpt, error }).execute()
  const attempts = claimed.attempts + 1
  const dlog = log.child({ deliveryId: claimed.id, endpointId: endpoint.id, eventId: claimed.event_id, attempt: attempts })

  if (status !== null && status >= 200 && status < 300) {
    await db
      .updateTable('webhook_deliveries')
      .set({ status: 'succeeded', attempts, delivered_at: sql<Date>`now()`, last_status_code: status, last_error: null, locked_until: null })
      .where('id', '=', claimed.id)
      .where('claim_token', '=', claimed.claim_token)
      .execute()
    await db.updateTable('webhook_endpoints').set({ failing_since: null }).where('id', '=', endpoint.id).execute()
    webhookDeliveries.inc({ outcome: 'succeeded' })
    dlog.debug({ status, duration }, 'webhook delivered')
    return nextInLine(db, endpoint.id, claimed.tenant_id)
  }

  const reason = error ?? `HTTP ${status}`
  if (status === 410) {
    if (await disableEndpoint(db, endpoint.id, 'the endpoint answered 410 Gone')) {
      webhookEndpointsDisabled.inc({ reason: 'gone' })
      dlog.warn({ url: endpoint.url }, 'webhook endpoint disabled: it answered 410 Gone')
    }
    await settleFailed(db, claimed, attempts, status, reason)
    webhookDeliveries.inc({ outcome: 'gone' })
    return []
  }

  const failingSince = endpoint.failing_since ?? new Date()
  if (!endpoint.failing_since) await db.updateTable('webhook_endpoints').set({ failing_since: failingSince }).where('id', '=', endpoint.id).execute()
  const delay = retryDelay(config, attempts, retryAfter)
  if (delay !== undefined) {
    const at = new Date(Date.now() + delay)
    await db
      .updateTable('webhook_deliveries')
      .set({ status: 'pending', attempts, next_attempt_at: at, last_status_code: status, last_error: reason, locked_until: null })
      .where('id', '=', claimed.id)
      .where('claim_token', '=', claimed.claim_token)
      .execute()
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
  await settleFailed(db, claimed, attempts, status, reason)
  webhookDeliveries.inc({ outcome: 'failed' })
  dlog.warn({ status, error }, 'webhook delivery given up after the last scheduled attempt')
  return disabled ? [] : nextInLine(db, endpoint.id, claimed.tenant_id)
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

async function settleFailed(db: Db, claimed: { id: string; claim_token: string }, attempts: number, status: number | null, reason: string) {
  await db
    .updateTable('webhook_deliveries')
    .set({ status: 'failed', attempts, last_status_code: status, last_error: reason, locked_until: null })
    .where('id', '=', claimed.id)
    .where('claim_token', '=', claimed.claim_token)
    .execute()
}

/**
 * What a lost trigger left behind: events relayed but not fanned out, and due
 * deliveries at the head of their line. Run by the maintenance schedule.
 */
export async function sweepWebhooks(db: Db): Promise<{ events: string[]; deliveries: FollowUp[] }> {
  const events = await db
    .selectFrom('outbox')
    .select('id')
    .where('kind', '=', 'webhook')
    .where('fanned_out_at', 'is', null)
    .where('created_at', '<', sql<Date>`now() - interval '30 seconds'`)
    .orderBy('seq')
    .limit(500)
    .execute()
  const due = await sql<{ id: string; next_attempt_at: Date }>`
    SELECT DISTINCT ON (d.endpoint_id, d.tenant_id) d.id, d.next_attempt_at
      FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id
     WHERE d.status IN ('pending', 'delivering') AND e.enabled AND e.deleted_at IS NULL
     ORDER BY d.endpoint_id, d.tenant_id, d.seq`.execute(db)
  return { events: events.map((e) => e.id), deliveries: due.rows.map((r) => ({ deliveryId: r.id, at: r.next_attempt_at })) }
}

/** Pending deliveries of one endpoint, one per line: used when an endpoint is enabled again. */
export async function headsOfLine(db: Db, endpointId: string): Promise<FollowUp[]> {
  const rows = await sql<{ id: string }>`
    SELECT DISTINCT ON (tenant_id) id FROM webhook_deliveries
     WHERE endpoint_id = ${endpointId} AND status IN ('pending', 'delivering')
     ORDER BY tenant_id, seq`.execute(db)
  return rows.rows.map((r) => ({ deliveryId: r.id }))
}
