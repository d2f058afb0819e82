// The tenant registry. Reads for anyone; writes of state come only from
// lifecycle/transition.ts, which locks the row first (`lockTenant` takes a
// Transaction, so no lock can outlive its unit of work).
import { sql, type Kysely, type Transaction } from 'kysely'
import { tenantNotFound } from '../errors.js'
import { isUuid, visibleTenant, type TenantVisibility } from './index.js'
import type { Database, NewTenant, Tenant, TenantEvent, TenantUpdate } from './schema.js'

type Conn = Kysely<Database> | Transaction<Database>

function byRef(db: Conn, ref: string) {
  const q = db.selectFrom('tenants').selectAll()
  return isUuid(ref) ? q.where('id', '=', ref.toLowerCase()) : q.where('slug', '=', ref)
}

/** Finds a tenant by uuid or slug. */
export async function findTenant(db: Conn, ref: string): Promise<Tenant | undefined> {
  return byRef(db, ref).executeTakeFirst()
}

/** Like findTenant, but an unknown tenant is a 404. */
export async function getTenant(db: Conn, ref: string): Promise<Tenant> {
  const tenant = await findTenant(db, ref)
  if (!tenant) throw tenantNotFound(ref)
  return tenant
}

/** Finds and locks a tenant's row until `trx` ends; an unknown tenant is a 404. */
export async function getLockedTenant(trx: Transaction<Database>, ref: string): Promise<Tenant> {
  const tenant = await byRef(trx, ref).forUpdate().executeTakeFirst()
  if (!tenant) throw tenantNotFound(ref)
  return tenant
}

/** Inserts a tenant; undefined when its slug is taken. */
export async function insertTenant(trx: Transaction<Database>, values: NewTenant): Promise<Tenant | undefined> {
  return trx
    .insertInto('tenants')
    .values(values)
    .onConflict((oc) => oc.column('slug').doNothing())
    .returningAll()
    .executeTakeFirst()
}

/** Writes a change to a locked row, bumping its version; undefined when the version moved. */
export async function saveTenant(trx: Transaction<Database>, tenant: Tenant, patch: TenantUpdate): Promise<Tenant | undefined> {
  return trx
    .updateTable('tenants')
    .set({ ...patch, version: tenant.version + 1, updated_at: sql<Date>`now()` })
    .where('id', '=', tenant.id)
    .where('version', '=', tenant.version)
    .returningAll()
    .executeTakeFirst()
}

/** Changes columns that are not state (a legal hold) on a locked row. */
export async function updateTenant(trx: Transaction<Database>, id: string, patch: TenantUpdate): Promise<Tenant> {
  return trx
    .updateTable('tenants')
    .set({ ...patch, updated_at: sql<Date>`now()` })
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirstOrThrow()
}

/** Someone used the tenant: its idle clock starts again. */
export async function touchLastActive(db: Conn, id: string): Promise<void> {
  await db.updateTable('tenants').set({ last_active_at: sql<Date>`now()` }).where('id', '=', id).execute()
}

/** Tenants whose databases were in use: their session counters and idle clocks, in one statement. */
export async function markInUse(db: Conn, busy: Array<{ id: string; sessions: string }>): Promise<void> {
  if (busy.length === 0) return
  await sql`
    UPDATE tenants t SET activity_counter = v.sessions::bigint, last_active_at = now()
      FROM unnest(${busy.map((b) => b.id)}::uuid[], ${busy.map((b) => b.sessions)}::text[]) AS v(id, sessions)
     WHERE t.id = v.id`.execute(db)
}

/** Every tenant whose data still exists (not wiped), oldest first. */
export async function tenantsNotWiped(db: Conn): Promise<Tenant[]> {
  return db.selectFrom('tenants').selectAll().where('state', '<>', 'wiped').orderBy('seq').execute()
}

export async function tenantsInState(db: Conn, state: Tenant['state']): Promise<Tenant[]> {
  return db.selectFrom('tenants').selectAll().where('state', '=', state).execute()
}

/** Decommissioned tenants past `wipe_after` and not held. */
export async function dueForWipe(db: Conn, limit: number): Promise<Array<Pick<Tenant, 'id'>>> {
  return db
    .selectFrom('tenants')
    .select('id')
    .where('state', '=', 'decommissioned')
    .where('wipe_after', '<=', new Date())
    .where('legal_hold_at', 'is', null)
    .limit(limit)
    .execute()
}

/** Tenants in one of `states` whose row has not changed since `before`. */
export async function unchangedSince(db: Conn, states: readonly Tenant['state'][], before: Date, limit: number): Promise<Tenant[]> {
  return db.selectFrom('tenants').selectAll().where('state', 'in', states).where('updated_at', '<', before).limit(limit).execute()
}

export interface TenantFilter {
  state?: string
  plan?: string
  /** Only what this principal may see (default: everything). */
  visible?: TenantVisibility
  limit: number
  /** The `seq` of the last tenant of the previous page. */
  after?: string
}

/** One keyset page ordered by creation; fetches one extra row to know whether more follow. */
export async function listTenants(db: Conn, filter: TenantFilter): Promise<{ items: Tenant[]; last?: string }> {
  let q = db.selectFrom('tenants').selectAll().orderBy('seq').limit(filter.limit + 1)
  if (filter.state !== undefined) q = q.where('state', '=', filter.state as Tenant['state'])
  if (filter.plan !== undefined) q = q.where('plan', '=', filter.plan)
  if (filter.after !== undefined) q = q.where('seq', '>', filter.after)
  if (filter.visible) q = q.where(visibleTenant('id', filter.visible, false))
  const rows = await q.execute()
  const items = rows.slice(0, filter.limit)
  return { items, last: rows.length > filter.limit ? items[items.length - 1]?.seq : undefined }
}

export async function tenantEvents(db: Conn, tenantId: string, limit: number, after?: string): Promise<TenantEvent[]> {
  let q = db.selectFrom('tenant_events').selectAll().where('tenant_id', '=', tenantId).orderBy('id').limit(limit)
  if (after !== undefined) q = q.where('id', '>', after)
  return q.execute()
}
