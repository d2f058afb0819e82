// Webhook deliveries, their attempts, and the outbox side of fan-out. The
// rules (which line a delivery waits in, when to retry or give up) are in
// webhooks/deliver.ts; the ordering rule is also here, in the claim's SQL,
// because it must hold in the one statement that takes the delivery.
import { sql, type Insertable, type Selectable, type Transaction } from 'kysely'
import { isUuid, seesEveryTenant, visibleTenant, type Db, type TenantVisibility } from './index.js'
import type { Database, DeliveryStatus, OutboxTable, WebhookAttemptTable, WebhookDeliveryTable } from './schema.js'

export type Delivery = Selectable<WebhookDeliveryTable>
export type Attempt = Selectable<WebhookAttemptTable>
export type DeliveryWithAttempts = Delivery & { attempt_log: Attempt[] }

/** A delivery to trigger, now or at a time. */
export type DueDelivery = { id: string; next_attempt_at: Date }

/** A delivery taken by one attempt; its outcome is written only while `claim_token` holds. */
export interface ClaimedDelivery {
  id: string
  endpoint_id: string
  event_id: string
  tenant_id: string | null
  attempts: number
  seq: string
  claim_token: string
}

// Fan-out: one delivery row per subscribed endpoint and webhook event.

/** Locks an outbox event for fan-out. */
export async function lockEvent(trx: Transaction<Database>, outboxId: string): Promise<Selectable<OutboxTable> | undefined> {
  return trx.selectFrom('outbox').selectAll().where('id', '=', outboxId).forUpdate().executeTakeFirst()
}

/** Creates the deliveries of an event, skipping those that exist; returns the ids of the new ones. */
export async function insertDeliveries(
  db: Db,
  event: Pick<Selectable<OutboxTable>, 'id' | 'name' | 'tenant_id' | 'seq'>,
  endpointIds: string[],
): Promise<string[]> {
  if (endpointIds.length === 0) return []
  const rows = await db
    .insertInto('webhook_deliveries')
    .values(endpointIds.map((endpointId) => ({ endpoint_id: endpointId, event_id: event.id, event_type: event.name, tenant_id: event.tenant_id, seq: event.seq })))
    .onConflict((oc) => oc.columns(['endpoint_id', 'event_id']).doNothing())
    .returning('id')
    .execute()
  return rows.map((r) => r.id)
}

export async function markFannedOut(db: Db, outboxId: string): Promise<void> {
  await db.updateTable('outbox').set({ fanned_out_at: sql<Date>`now()` }).where('id', '=', outboxId).execute()
}

/** Webhook events relayed more than 30 s ago and still not fanned out: their trigger was lost. */
export async function unfannedEvents(db: Db): Promise<string[]> {
  const rows = await db
    .selectFrom('outbox')
    .select('id')
    .where('kind', '=', 'webhook')
    .where('fanned_out_at', 'is', null)
    .where('created_at', '<', sql<Date>`now() - interval '30 seconds'`)
    .orderBy('seq')
    .limit(500)
    .execute()
  return rows.map((r) => r.id)
}

/** What a delivery sends: the body of its outbox event. */
export async function eventPayload(db: Db, eventId: string): Promise<unknown> {
  const event = await db.selectFrom('outbox').select('payload').where('id', '=', eventId).executeTakeFirstOrThrow()
  return event.payload
}

// Attempts

/**
 * Claims a due delivery for `lockMs`, only if it is at the head of its line:
 * no earlier delivery of the same tenant to the same endpoint still open, and
 * no earlier event of that tenant not yet fanned out. Undefined otherwise.
 */
export async function claimDelivery(db: Db, id: string, lockMs: number): Promise<ClaimedDelivery | undefined> {
  const result = await sql<ClaimedDelivery>`
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

export async function recordAttempt(
  db: Db,
  attempt: Pick<Insertable<WebhookAttemptTable>, 'delivery_id' | 'status_code' | 'duration_ms' | 'response_excerpt' | 'error'>,
): Promise<void> {
  await db.insertInto('webhook_attempts').values(attempt).execute()
}

type Claim = Pick<ClaimedDelivery, 'id' | 'claim_token'>

export async function markDelivered(db: Db, claim: Claim, attempts: number, statusCode: number): Promise<void> {
  await db
    .updateTable('webhook_deliveries')
    .set({ status: 'succeeded', attempts, delivered_at: sql<Date>`now()`, last_status_code: statusCode, last_error: null, locked_until: null })
    .where('id', '=', claim.id)
    .where('claim_token', '=', claim.claim_token)
    .execute()
}

export async function scheduleRetry(
  db: Db,
  claim: Claim,
  outcome: { attempts: number; at: Date; statusCode: number | null; error: string },
): Promise<void> {
  await db
    .updateTable('webhook_deliveries')
    .set({ status: 'pending', attempts: outcome.attempts, next_attempt_at: outcome.at, last_status_code: outcome.statusCode, last_error: outcome.error, locked_until: null })
    .where('id', '=', claim.id)
    .where('claim_token', '=', claim.claim_token)
    .execute()
}

export async function markFailed(db: Db, claim: Claim, outcome: { attempts: number; statusCode: number | null; error: string }): Promise<void> {
  await db
    .updateTable('webhook_deliveries')
    .set({ status: 'failed', attempts: outcome.attempts, last_status_code: outcome.statusCode, last_error: outcome.error, locked_until: null })
    .where('id', '=', claim.id)
    .where('claim_token', '=', claim.claim_token)
    .execute()
}

// Lines: one endpoint and one tenant (or none), in outbox order.

/** The next pending delivery in the line (endpoint, tenant), if any. */
export async function nextInLine(db: Db, endpointId: string, tenantId: string | null): Promise<DueDelivery | undefined> {
  let q = db
    .selectFrom('webhook_deliveries')
    .select(['id', 'next_attempt_at'])
    .where('endpoint_id', '=', endpointId)
    .where('status', '=', 'pending')
    .orderBy('seq')
    .limit(1)
  q = tenantId === null ? q.where('tenant_id', 'is', null) : q.where('tenant_id', '=', tenantId)
  return q.executeTakeFirst()
}

/** The first open delivery of every line whose endpoint is enabled. */
export async function openHeadsOfLine(db: Db): Promise<DueDelivery[]> {
  const due = await sql<DueDelivery>`
    SELECT DISTINCT ON (d.endpoint_id, d.tenant_id) d.id, d.next_attempt_at
      FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id
     WHERE d.status IN ('pending', 'delivering') AND e.enabled AND e.deleted_at IS NULL
     ORDER BY d.endpoint_id, d.tenant_id, d.seq`.execute(db)
  return due.rows
}

/** The first open delivery of each of one endpoint's lines. */
export async function endpointHeadsOfLine(db: Db, endpointId: string): Promise<string[]> {
  const rows = await sql<{ id: string }>`
    SELECT DISTINCT ON (tenant_id) id FROM webhook_deliveries
     WHERE endpoint_id = ${endpointId} AND status IN ('pending', 'delivering')
     ORDER BY tenant_id, seq`.execute(db)
  return rows.rows.map((r) => r.id)
}

// The delivery log

/** Fails the open deliveries of an endpoint that will never send them. */
export async function failOpenDeliveries(db: Db, endpointId: string, reason: string): Promise<void> {
  await db
    .updateTable('webhook_deliveries')
    .set({ status: 'failed', last_error: reason, locked_until: null, claim_token: null })
    .where('endpoint_id', '=', endpointId)
    .where('status', 'in', ['pending', 'delivering'])
    .execute()
}

// An id that is no uuid matches nothing: Postgres would refuse the cast.

/** Locks a delivery whose endpoint was not deleted. */
/** The tenant a delivery is for (null: a fleet event) and who made its endpoint, or undefined when there is no such delivery. */
export async function deliveryAccess(db: Db, id: string): Promise<{ tenant_id: string | null; owner: string | null } | undefined> {
  return db
    .selectFrom('webhook_deliveries as d')
    .innerJoin('webhook_endpoints as e', 'e.id', 'd.endpoint_id')
    .select(['d.tenant_id', 'e.owner'])
    .where('d.id', '=', id)
    .executeTakeFirst()
}

export async function lockDelivery(trx: Transaction<Database>, id: string): Promise<Delivery | undefined> {
  if (!isUuid(id)) return undefined
  return trx
    .selectFrom('webhook_deliveries')
    .innerJoin('webhook_endpoints', 'webhook_endpoints.id', 'webhook_deliveries.endpoint_id')
    .selectAll('webhook_deliveries')
    .where('webhook_deliveries.id', '=', id)
    .where('webhook_endpoints.deleted_at', 'is', null)
    .forUpdate()
    .executeTakeFirst()
}

/** Makes a delivery pending and due now, its earlier claim void. */
export async function requeueDelivery(db: Db, id: string): Promise<Delivery> {
  return db
    .updateTable('webhook_deliveries')
    .set({ status: 'pending', next_attempt_at: sql<Date>`now()`, locked_until: null, claim_token: null })
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirstOrThrow()
}

export interface DeliveryFilter {
  status?: DeliveryStatus
  limit: number
  /** The `seq` of the last delivery of the previous page. */
  before?: string
  /** Only deliveries of tenants this principal may see (fleet events: only with every tenant). */
  visible?: TenantVisibility
}

/** One keyset page of an endpoint's deliveries, newest first, each with its attempts. */
export async function pageDeliveries(db: Db, endpointId: string, filter: DeliveryFilter): Promise<{ items: DeliveryWithAttempts[]; last?: string }> {
  let q = db
    .selectFrom('webhook_deliveries')
    .selectAll()
    .where('endpoint_id', '=', endpointId)
    .orderBy('seq', 'desc')
    .limit(filter.limit + 1)
  if (filter.status !== undefined) q = q.where('status', '=', filter.status)
  if (filter.before !== undefined) q = q.where('seq', '<', filter.before)
  if (filter.visible) q = q.where(visibleTenant('tenant_id', filter.visible, seesEveryTenant(filter.visible)))
  const rows = await q.execute()
  const items = rows.slice(0, filter.limit)
  const attempts = items.length
    ? await db.selectFrom('webhook_attempts').selectAll().where('delivery_id', 'in', items.map((d) => d.id)).orderBy('id').execute()
    : []
  return {
    items: items.map((d) => ({ ...d, attempt_log: attempts.filter((a) => a.delivery_id === d.id) })),
    last: rows.length > filter.limit ? items[items.length - 1]?.seq : undefined,
  }
}
