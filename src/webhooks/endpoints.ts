// Webhook endpoints: where billing wants to hear about lifecycle events. The
// signing secret is shown once, at creation, and kept sealed under the master key.
import { randomUUID } from 'node:crypto'
import { failOpenDeliveries, lockDelivery, requeueDelivery, type Delivery } from '../db/deliveries.js'
import {
  disableEnabledEndpoint,
  getEndpoint,
  insertEndpoint,
  lockConfigEndpoint,
  markEndpointDeleted,
  recordEndpointEvent,
  updateEndpointRow,
  type Endpoint,
} from '../db/endpoints.js'
import type { Db } from '../db/index.js'
import { deliveryInFlight, deliveryNotFound, endpointManaged, invalidWebhookUrl, webhookUrlForbidden } from '../errors.js'
import { writeOutbox } from '../db/outbox.js'
import { literalAddress, refusalMessage, vetHost, type AddressPolicy } from './address.js'
import { generateSecret, sealSecret } from './sign.js'

/**
 * The URL, or why it cannot be a webhook's: http(s) only, and no credentials
 * (they would leak into logs and the delivery log).
 */
function readWebhookUrl(raw: string): { url: URL } | { refusal: string } {
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    return { refusal: `"${raw}" is not a URL.` }
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return { refusal: 'Only http and https URLs are accepted.' }
  if (url.username || url.password) return { refusal: 'Credentials in the URL are refused; webhooks are signed instead.' }
  if (url.hash) return { refusal: 'A fragment (#...) has no meaning for a webhook URL.' }
  return { url }
}

function parseWebhookUrl(raw: string): URL {
  const read = readWebhookUrl(raw)
  if ('refusal' in read) throw invalidWebhookUrl(read.refusal)
  return read.url
}

/**
 * A URL given through the API: well formed, and its host neither is nor
 * resolves to an address `policy` refuses. Returns the URL normalised (the
 * WHATWG parser already turns 0x7f000001, 2130706433 or 127.1 into 127.0.0.1).
 */
async function checkWebhookUrl(raw: string, policy: AddressPolicy): Promise<string> {
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
  const read = readWebhookUrl(billingUrl)
  return 'url' in read && endpoint.url === read.url.toString()
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
    const endpoint = await insertEndpoint(trx, {
      id,
      url,
      description: input.description ?? null,
      event_types: input.event_types ?? null,
      secret: sealSecret(masterKey, id, secret),
      managed_by: null,
      owner: actor,
    })
    await recordEndpointEvent(trx, id, 'created', actor, { url })
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
    const existing = await lockConfigEndpoint(trx)
    if (!existing) {
      const id = randomUUID()
      const created = await insertEndpoint(trx, {
        id,
        url,
        description: 'BILLING_WEBHOOK_URL',
        event_types: null,
        secret: sealSecret(masterKey, id, secret),
        managed_by: 'config',
      })
      await recordEndpointEvent(trx, id, 'created', 'config', { url })
      return created
    }
    const updated = await updateEndpointRow(trx, existing.id, { url, secret: sealSecret(masterKey, existing.id, secret), undelete: true })
    if (existing.url !== url) await recordEndpointEvent(trx, existing.id, 'updated', 'config', { url })
    return updated
  })
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
    const disabled = change.enabled === false && endpoint.enabled
    const reenabled = change.enabled === true && !endpoint.enabled
    const updated = await updateEndpointRow(trx, endpoint.id, {
      url,
      description: change.description,
      event_types: change.event_types,
      ...(disabled ? { disable: { reason: `disabled by ${actor}` } } : {}),
      enable: reenabled,
    })
    if (change.enabled !== undefined && change.enabled !== endpoint.enabled) {
      await recordEndpointEvent(trx, endpoint.id, change.enabled ? 'enabled' : 'disabled', actor)
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
    await markEndpointDeleted(trx, endpoint.id)
    // Nothing will ever send these: settle them rather than leave them pending.
    await failOpenDeliveries(trx, endpoint.id, 'endpoint deleted')
    await recordEndpointEvent(trx, endpoint.id, 'deleted', actor)
  })
}

/** Turns an endpoint off after repeated failure or a 410; the operator sees why. */
export async function disableEndpoint(db: Db, id: string, reason: string): Promise<boolean> {
  return db.transaction().execute(async (trx) => {
    if (!(await disableEnabledEndpoint(trx, id, reason))) return false
    await recordEndpointEvent(trx, id, 'disabled', 'landlord', { reason })
    return true
  })
}

/** Sends a failed (or already delivered) event again, at once. */
export async function retryDelivery(db: Db, id: string, actor: string): Promise<Delivery> {
  return db.transaction().execute(async (trx) => {
    const delivery = await lockDelivery(trx, id)
    if (!delivery) throw deliveryNotFound(id)
    if (delivery.status === 'pending' || delivery.status === 'delivering') throw deliveryInFlight(delivery.status)
    const updated = await requeueDelivery(trx, id)
    await recordEndpointEvent(trx, delivery.endpoint_id, 'delivery_retried', actor, { delivery_id: id, event_id: delivery.event_id })
    await writeOutbox(trx, [{ kind: 'dispatch', name: 'dispatch', tenant_id: null, payload: { deliveryId: id } }])
    return updated
  })
}
