// Webhook endpoints and their event log. What an endpoint should become is
// decided in webhooks/endpoints.ts; these only read and write the rows.
import { sql, type Insertable, type Selectable, type Transaction } from 'kysely'
import { endpointNotFound } from '../errors.js'
import { isUuid, type Db } from './index.js'
import type { Database, WebhookEndpointEventTable, WebhookEndpointTable } from './schema.js'

export type Endpoint = Selectable<WebhookEndpointTable>
export type NewEndpoint = Insertable<WebhookEndpointTable>
export type EndpointEvent = Selectable<WebhookEndpointEventTable>

// An id that is no uuid matches nothing: Postgres would refuse the cast.

/** An endpoint that was not deleted, or undefined. */
export async function findEndpoint(db: Db, id: string): Promise<Endpoint | undefined> {
  if (!isUuid(id)) return undefined
  return db.selectFrom('webhook_endpoints').selectAll().where('id', '=', id).where('deleted_at', 'is', null).executeTakeFirst()
}

/** Like findEndpoint, but an unknown endpoint is a 404. */
export async function getEndpoint(db: Db, id: string): Promise<Endpoint> {
  const endpoint = await findEndpoint(db, id)
  if (!endpoint) throw endpointNotFound(id)
  return endpoint
}

/** An endpoint row, deleted or not, that must exist (a delivery refers to it). */
export async function readEndpoint(db: Db, id: string): Promise<Endpoint> {
  return db.selectFrom('webhook_endpoints').selectAll().where('id', '=', id).executeTakeFirstOrThrow()
}

/** Every endpoint not deleted, oldest first. */
/** Live endpoints, oldest first; with `owner`, only those that principal made. */
export async function listEndpoints(db: Db, owner?: string): Promise<Endpoint[]> {
  let q = db.selectFrom('webhook_endpoints').selectAll().where('deleted_at', 'is', null).orderBy('created_at')
  if (owner !== undefined) q = q.where('owner', '=', owner)
  return q.execute()
}

/** Who made a live endpoint (null: the configuration, or an earlier release); undefined when there is none such. */
export async function endpointOwner(db: Db, id: string): Promise<string | null | undefined> {
  const row = await db.selectFrom('webhook_endpoints').select('owner').where('id', '=', id).where('deleted_at', 'is', null).executeTakeFirst()
  return row === undefined ? undefined : row.owner
}

/**
 * Endpoints that want events of `type`, enabled or not (a disabled one holds
 * its deliveries), and whose owner may see `tenantId` (a fleet event, null:
 * only an owner granted every tenant with no denial; an endpoint of a deleted
 * principal: nothing).
 */
export async function subscribedEndpointIds(db: Db, type: string, tenantId: string | null): Promise<string[]> {
  const rows = await db
    .selectFrom('webhook_endpoints as e')
    .select('e.id')
    .where('e.deleted_at', 'is', null)
    .where((eb) => eb.or([eb('e.event_types', 'is', null), eb(sql.val(type), '=', eb.fn.any('e.event_types'))]))
    .where(sql<boolean>`(e.owner IS NULL OR EXISTS (
      SELECT 1 FROM principals p WHERE p.name = e.owner AND CASE
        WHEN ${tenantId}::uuid IS NULL THEN p.all_tenants AND NOT EXISTS (SELECT 1 FROM principal_denials d WHERE d.principal = p.name)
        ELSE NOT EXISTS (SELECT 1 FROM principal_denials d WHERE d.principal = p.name AND d.tenant_id = ${tenantId}::uuid)
             AND (p.all_tenants OR EXISTS (SELECT 1 FROM principal_grants g WHERE g.principal = p.name AND g.tenant_id = ${tenantId}::uuid))
        END))`)
    .execute()
  return rows.map((r) => r.id)
}

export async function insertEndpoint(db: Db, endpoint: NewEndpoint): Promise<Endpoint> {
  return db.insertInto('webhook_endpoints').values(endpoint).returningAll().executeTakeFirstOrThrow()
}

/**
 * Locks the endpoint BILLING_WEBHOOK_URL defines, if there is one. An advisory
 * lock first: API and worker may start together on a fresh database, with no
 * row to lock yet.
 */
export async function lockConfigEndpoint(trx: Transaction<Database>): Promise<Endpoint | undefined> {
  await sql`SELECT pg_advisory_xact_lock(hashtext('landlord.config_endpoint'))`.execute(trx)
  return trx.selectFrom('webhook_endpoints').selectAll().where('managed_by', '=', 'config').forUpdate().executeTakeFirst()
}

/** What one update changes; every update also stamps `updated_at`. */
export interface EndpointPatch {
  url?: string
  description?: string
  event_types?: string[] | null
  secret?: Buffer
  /** Clears `deleted_at`: the configured endpoint is back. */
  undelete?: boolean
  /** Off from now on, saying why. */
  disable?: { reason: string }
  /** On again, its failure forgotten. */
  enable?: boolean
}

export async function updateEndpointRow(db: Db, id: string, patch: EndpointPatch): Promise<Endpoint> {
  return db
    .updateTable('webhook_endpoints')
    .set({
      ...(patch.url !== undefined ? { url: patch.url } : {}),
      ...(patch.description !== undefined ? { description: patch.description } : {}),
      ...(patch.event_types !== undefined ? { event_types: patch.event_types } : {}),
      ...(patch.secret !== undefined ? { secret: patch.secret } : {}),
      ...(patch.undelete ? { deleted_at: null } : {}),
      ...(patch.disable ? { enabled: false, disabled_at: sql<Date>`now()`, disabled_reason: patch.disable.reason } : {}),
      ...(patch.enable ? { enabled: true, disabled_at: null, disabled_reason: null, failing_since: null } : {}),
      updated_at: sql<Date>`now()`,
    })
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirstOrThrow()
}

/** Deleted endpoints stay as rows: their deliveries and events refer to them. */
export async function markEndpointDeleted(db: Db, id: string): Promise<void> {
  await db
    .updateTable('webhook_endpoints')
    .set({ deleted_at: sql<Date>`now()`, enabled: false, updated_at: sql<Date>`now()` })
    .where('id', '=', id)
    .execute()
}

/** Disables an enabled endpoint; false when it was not enabled. */
export async function disableEnabledEndpoint(db: Db, id: string, reason: string): Promise<boolean> {
  const r = await db
    .updateTable('webhook_endpoints')
    .set({ enabled: false, disabled_at: sql<Date>`now()`, disabled_reason: reason, updated_at: sql<Date>`now()` })
    .where('id', '=', id)
    .where('enabled', '=', true)
    .executeTakeFirst()
  return r.numUpdatedRows > 0n
}

/** When the endpoint's current run of failures began; null once it answers again. */
export async function setFailingSince(db: Db, id: string, since: Date | null): Promise<void> {
  await db.updateTable('webhook_endpoints').set({ failing_since: since }).where('id', '=', id).execute()
}

export async function recordEndpointEvent(db: Db, endpointId: string, type: string, actor: string, data: Record<string, unknown> = {}): Promise<void> {
  await db.insertInto('webhook_endpoint_events').values({ endpoint_id: endpointId, type, actor, data: JSON.stringify(data) }).execute()
}

/** The endpoint's 50 latest events, newest first. */
export async function endpointEvents(db: Db, id: string): Promise<EndpointEvent[]> {
  return db.selectFrom('webhook_endpoint_events').selectAll().where('endpoint_id', '=', id).orderBy('id', 'desc').limit(50).execute()
}
