// Webhook endpoints: where billing wants to hear about lifecycle events. The
// signing secret is shown once, at creation, and kept sealed under the master key.
import { randomUUID } from 'node:crypto'
import { sql, type Transaction } from 'kysely'
import type { Db } from '../db/index.js'
import type { Database, WebhookEndpointTable } from '../db/schema.js'
import type { Selectable } from 'kysely'
import { deliveryInFlight, deliveryNotFound, endpointManaged, endpointNotFound, invalidWebhookUrl, webhookUrlForbidden } from '../errors.js'
import { writeOutbox } from '../lifecycle/transition.js'
import { literalAddress, refusalMessage, vetHost, type AddressPolicy } from './address.js'
import { generateSecret, sealSecret } from './sign.js'

export type Endpoint = Selectable<WebhookEndpointTable>

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/** http(s) only, no credentials in the URL (they would leak into logs and the delivery log). */
export function parseWebhookUrl(raw: string): URL {
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    throw invalidWebhookUrl(`"${raw}" is not a URL.`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw invalidWebhookUrl('Only http and https URLs are accepted.')
  if (url.username || url.password) throw invalidWebhookUrl('Credentials in the URL are refused; webhooks are signed instead.')
  if (url.hash) throw invalidWebhookUrl('A fragment (#...) has no meaning for a webhook URL.')
  return url
}

/**
 * A URL given through the API: well formed, and its host neither is nor
 * resolves to an address `policy` refuses. Returns the URL normalised (the
 * WHATWG parser already turns 0x7f000001, 2130706433 or 127.1 into 127.0.0.1).
 */
export async function checkWebhookUrl(raw: string, policy: AddressPolicy): Promise<string> {
  const url = parseWebhookUrl(raw)
  const refusal = await vetHost(policy, url.hostname)
  if (refusal) {
    // The host and address only: the path or query may carry a token.
    const resolved = literalAddress(url.hostname) === undefined ? `${url.hostname} resolves to ${refusal.address}: ` : ''
    throw webhookUrlForbidden(
      `${resolved}${refusalMessage(refusal)}. Webhooks may only reach public addresses, unless WEBHOOK_ALLOWED_NETWORKS opens the network.`,
    )
  }
  return url.toString()
}

/** BILLING_WEBHOOK_URL's endpoint, still at the configured URL: the operator's own, reachable wherever it points. */
export function isOperatorEndpoint(endpoint: Endpoint, billingUrl: string | undefined): boolean {
  if (endpoint.managed_by !== 'config' || billingUrl === undefined) return false
  try {
    return endpoint.url === parseWebhookUrl(billingUrl).toString()
  } catch {
    return false
  }
}

async function recordEvent(db: Db | Transaction<Database>, endpointId: string, type: string, actor: string, data: Record<string, unknown> = {}) {
  await db.insertInto('webhook_endpoint_events').values({ endpoint_id: endpointId, type, actor, data: JSON.stringify(data) }).execute()
}

export interface EndpointInput {
  url: string
  event_types?: string[]
  description?: string
}

export async function createEndpoint(
  db: Db,
  masterKey: Buffer,
  policy: AddressPolicy,
  input: EndpointInput,
  actor: string,
): Promise<{ endpoint: Endpoint; secret: string }> {
  const url = await checkWebhookUrl(input.url, policy)
  const id = randomUUID()
  const secret = generateSecret()
  return db.transaction().execute(async (trx) => {
    const endpoint = await trx
      .insertInto('webhook_endpoints')
      .values({
        id,
        url,
        description: input.description ?? null,
        event_types: input.event_types ?? null,
        secret: sealSecret(masterKey, id, secret),
        managed_by: null,
      })
      .returningAll()
      .executeTakeFirstOrThrow()
    await recordEvent(trx, id, 'created', actor, { url })
    return { endpoint, secret }
  })
}

/**
 * The endpoint BILLING_WEBHOOK_URL defines: created at start, or updated to the
 * configured URL and secret. The operator chose it, so its address is not vetted.
 */
export async function ensureConfigEndpoint(db: Db, masterKey: Buffer, rawUrl: string, secret: string): Promise<Endpoint> {
  const url = parseWebhookUrl(rawUrl).toString()
  return db.transaction().execute(async (trx) => {
    // API and worker may start together on a fresh database: there may be no row to lock yet.
    await sql`SELECT pg_advisory_xact_lock(hashtext('landlord.config_endpoint'))`.execute(trx)
    const existing = await trx.selectFrom('webhook_endpoints').selectAll().where('managed_by', '=', 'config').forUpdate().executeTakeFirst()
    if (!existing) {
      const id = randomUUID()
      const created = await trx
        .insertInto('webhook_endpoints')
        .values({ id, url, description: 'BILLING_WEBHOOK_URL', event_types: null, secret: sealSecret(masterKey, id, secret), managed_by: 'config' })
        .returningAll()
        .executeTakeFirstOrThrow()
      await recordEvent(trx, id, 'created', 'config', { url })
      return created
    }
    const updated = await trx
      .updateTable('webhook_endpoints')
      .set({ url, secret: sealSecret(masterKey, existing.id, secret), deleted_at: null, updated_at: sql<Date>`now()` })
      .where('id', '=', existing.id)
      .returningAll()
      .executeTakeFirstOrThrow()
    if (existing.url !== url) await recordEvent(trx, existing.id, 'updated', 'config', { url })
    return updated
  })
}

export async function listEndpoints(db: Db): Promise<Endpoint[]> {
  return db.selectFrom('webhook_endpoints').selectAll().where('deleted_at', 'is', null).orderBy('created_at').execute()
}

export async function getEndpoint(db: Db | Transaction<Database>, id: string): Promise<Endpoint> {
  const endpoint = UUID.test(id)
    ? await db.selectFrom('webhook_endpoints').selectAll().where('id', '=', id).where('deleted_at', 'is', null).executeTakeFirst()
    : undefined
  if (!endpoint) throw endpointNotFound(id)
  return endpoint
}

export async function endpointEvents(db: Db, id: string) {
  return db.selectFrom('webhook_endpoint_events').selectAll().where('endpoint_id', '=', id).orderBy('id', 'desc').limit(50).execute()
}

export interface EndpointChange {
  enabled?: boolean
  url?: string
  description?: string
  event_types?: string[] | null
}

/**
 * Updates an endpoint; enabling it again clears the failure and resumes its
 * pending deliveries. A new URL is vetted like a new endpoint's, that of
 * BILLING_WEBHOOK_URL's endpoint included: it is no longer the operator's.
 */
export async function updateEndpoint(db: Db, policy: AddressPolicy, id: string, change: EndpointChange, actor: string): Promise<Endpoint> {
  // Resolved before the transaction: a slow DNS answer holds no connection.
  const url = change.url === undefined ? undefined : await checkWebhookUrl(change.url, policy)
  return db.transaction().execute(async (trx) => {
    const endpoint = await getEndpoint(trx, id)
    const reenabled = change.enabled === true && !endpoint.enabled
    const updated = await trx
      .updateTable('webhook_endpoints')
      .set({
        ...(url !== undefined ? { url } : {}),
        ...(change.description !== undefined ? { description: change.description } : {}),
        ...(change.event_types !== undefined ? { event_types: change.event_types } : {}),
        ...(change.enabled === false && endpoint.enabled ? { enabled: false, disabled_at: sql<Date>`now()`, disabled_reason: `disabled by ${actor}` } : {}),
        ...(reenabled ? { enabled: true, disabled_at: null, disabled_reason: null, failing_since: null } : {}),
        updated_at: sql<Date>`now()`,
      })
      .where('id', '=', endpoint.id)
      .returningAll()
      .executeTakeFirstOrThrow()
    if (change.enabled !== undefined && change.enabled !== endpoint.enabled) {
      await recordEvent(trx, endpoint.id, change.enabled ? 'enabled' : 'disabled', actor)
    }
    if (reenabled) await writeOutbox(trx, [{ kind: 'dispatch', name: 'dispatch', tenant_id: null, payload: { endpointId: endpoint.id } }])
    return updated
  })
}

export async function deleteEndpoint(db: Db, id: string, actor: string): Promise<void> {
  await db.transaction().execute(async (trx) => {
    const endpoint = await getEndpoint(trx, id)
    // It would come back at the next start: the configuration owns it.
    if (endpoint.managed_by === 'config') throw endpointManaged()
    await trx
      .updateTable('webhook_endpoints')
      .set({ deleted_at: sql<Date>`now()`, enabled: false, updated_at: sql<Date>`now()` })
      .where('id', '=', endpoint.id)
      .execute()
    // Nothing will ever send these: settle them rather than leave them pending.
    await trx
      .updateTable('webhook_deliveries')
      .set({ status: 'failed', last_error: 'endpoint deleted', locked_until: null, claim_token: null })
      .where('endpoint_id', '=', endpoint.id)
      .where('status', 'in', ['pending', 'delivering'])
      .execute()
    await recordEvent(trx, endpoint.id, 'deleted', actor)
  })
}

/** Turns an endpoint off after repeated failure or a 410; the operator sees why. */
export async function disableEndpoint(db: Db, id: string, reason: string): Promise<boolean> {
  return db.transaction().execute(async (trx) => {
    const r = await trx
      .updateTable('webhook_endpoints')
      .set({ enabled: false, disabled_at: sql<Date>`now()`, disabled_reason: reason, updated_at: sql<Date>`now()` })
      .where('id', '=', id)
      .where('enabled', '=', true)
      .executeTakeFirst()
    if (r.numUpdatedRows === 0n) return false
    await recordEvent(trx, id, 'disabled', 'landlord', { reason })
    return true
  })
}

export interface DeliveryFilter {
  status?: string
  limit: number
  /** created_at/id keyset: the id of the last delivery of the previous page. */
  before?: string
}

/** Deliveries of one endpoint, newest first, each with its attempts. */
export async function listDeliveries(db: Db, endpointId: string, filter: DeliveryFilter) {
  await getEndpoint(db, endpointId)
  let q = db
    .selectFrom('webhook_deliveries')
    .selectAll()
    .where('endpoint_id', '=', endpointId)
    .orderBy('seq', 'desc')
    .limit(filter.limit + 1)
  if (filter.status !== undefined) q = q.where('status', '=', filter.status as never)
  if (filter.before !== undefined) q = q.where('seq', '<', filter.before)
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

/** Sends a failed (or already delivered) event again, at once. */
export async function retryDelivery(db: Db, id: string, actor: string) {
  if (!UUID.test(id)) throw deliveryNotFound(id)
  return db.transaction().execute(async (trx) => {
    const delivery = await trx
      .selectFrom('webhook_deliveries')
      .innerJoin('webhook_endpoints', 'webhook_endpoints.id', 'webhook_deliveries.endpoint_id')
      .selectAll('webhook_deliveries')
      .where('webhook_deliveries.id', '=', id)
      .where('webhook_endpoints.deleted_at', 'is', null)
      .forUpdate()
      .executeTakeFirst()
    if (!delivery) throw deliveryNotFound(id)
    if (delivery.status === 'pending' || delivery.status === 'delivering') throw deliveryInFlight(delivery.status)
    const updated = await trx
      .updateTable('webhook_deliveries')
      .set({ status: 'pending', next_attempt_at: sql<Date>`now()`, locked_until: null, claim_token: null })
      .where('id', '=', id)
      .returningAll()
      .executeTakeFirstOrThrow()
    await recordEvent(trx, delivery.endpoint_id, 'delivery_retried', actor, { delivery_id: id, event_id: delivery.event_id })
    await writeOutbox(trx, [{ kind: 'dispatch', name: 'dispatch', tenant_id: null, payload: { deliveryId: id } }])
    return updated
  })
}
