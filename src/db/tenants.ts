// Read queries of the tenant registry. Writes of state go through lifecycle/transition.ts.
import type { Kysely, Transaction } from 'kysely'
import { tenantNotFound } from '../errors.js'
import type { Database, Tenant, TenantEvent } from './schema.js'

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

type Conn = Kysely<Database> | Transaction<Database>

/** Finds a tenant by uuid or slug. */
export async function findTenant(db: Conn, ref: string, opts: { forUpdate?: boolean } = {}): Promise<Tenant | undefined> {
  let q = db.selectFrom('tenants').selectAll()
  q = UUID.test(ref) ? q.where('id', '=', ref.toLowerCase()) : q.where('slug', '=', ref)
  if (opts.forUpdate) q = q.forUpdate()
  return q.executeTakeFirst()
}

/** Like findTenant, but an unknown tenant is a 404. */
export async function getTenant(db: Conn, ref: string, opts: { forUpdate?: boolean } = {}): Promise<Tenant> {
  const tenant = await findTenant(db, ref, opts)
  if (!tenant) throw tenantNotFound(ref)
  return tenant
}

export interface TenantFilter {
  state?: string
  plan?: string
  limit: number
  /** The `seq` of the last tenant of the previous page. */
  after?: string
}

/** One keyset page ordered by creation; fetches one extra row to know whether more follow. */
export async function listTenants(db: Conn, filter: TenantFilter): Promise<{ items: Tenant[]; last?: string }> {
  let q = db.selectFrom('tenants').selectAll().orderBy('seq').limit(filter.limit + 1)
  if (filter.state !== undefined) q = q.where('state', '=', filter.state)
  if (filter.plan !== undefined) q = q.where('plan', '=', filter.plan)
  if (filter.after !== undefined) q = q.where('seq', '>', filter.after)
  const rows = await q.execute()
  const items = rows.slice(0, filter.limit)
  return { items, last: rows.length > filter.limit ? items[items.length - 1]?.seq : undefined }
}

export async function tenantEvents(db: Conn, tenantId: string, limit: number, after?: string): Promise<TenantEvent[]> {
  let q = db.selectFrom('tenant_events').selectAll().where('tenant_id', '=', tenantId).orderBy('id').limit(limit)
  if (after !== undefined) q = q.where('id', '>', after)
  return q.execute()
}
