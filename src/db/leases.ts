// Credential leases: one row per login role the local secrets backend
// creates. The row is written before the role, so the reaper knows every role.
import { sql, type Insertable, type Selectable } from 'kysely'
import type { Db } from './index.js'
import type { LeaseTable } from './schema.js'

export type Lease = Selectable<LeaseTable>
export type NewLease = Insertable<LeaseTable>

/** The lease a principal took with an idempotency key, live or spent. */
export async function findLeaseByKey(db: Db, tenantId: string, principal: string, idempotencyKey: string): Promise<Lease | undefined> {
  return db
    .selectFrom('leases')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('principal', '=', principal)
    .where('idempotency_key', '=', idempotencyKey)
    .executeTakeFirst()
}

/** Frees a spent lease's idempotency key for a new lease. */
export async function releaseLeaseKey(db: Db, id: string): Promise<void> {
  await db.updateTable('leases').set({ idempotency_key: null }).where('id', '=', id).execute()
}

/** Inserts a lease; false when another lease already holds its idempotency key. */
export async function insertLease(db: Db, lease: NewLease): Promise<boolean> {
  const inserted = await db
    .insertInto('leases')
    .values(lease)
    .onConflict((oc) => oc.columns(['tenant_id', 'principal', 'idempotency_key']).where('idempotency_key', 'is not', null).doNothing())
    .executeTakeFirst()
  return inserted.numInsertedOrUpdatedRows !== 0n
}

/** Whether a lease was revoked; a lease that does not exist counts as revoked. */
export async function isLeaseRevoked(db: Db, id: string): Promise<boolean> {
  const row = await db.selectFrom('leases').select('revoked_at').where('id', '=', id).executeTakeFirst()
  return !row || row.revoked_at !== null
}

export async function markLeaseRevoked(db: Db, id: string): Promise<void> {
  await db.updateTable('leases').set({ revoked_at: sql<Date>`now()` }).where('id', '=', id).where('revoked_at', 'is', null).execute()
}

/** A tenant's leases not revoked yet, issued before `issuedBefore` if given. */
export async function liveLeases(db: Db, tenantId: string, issuedBefore?: Date): Promise<Array<Pick<Lease, 'id' | 'username' | 'external_id'>>> {
  let q = db.selectFrom('leases').select(['id', 'username', 'external_id']).where('tenant_id', '=', tenantId).where('revoked_at', 'is', null)
  // A JavaScript Date has millisecond precision and the column microseconds: a lease issued in the cutoff's millisecond is before it.
  if (issuedBefore) q = q.where(sql`date_trunc('milliseconds', created_at)`, '<=', issuedBefore)
  return q.execute()
}

/** Up to `limit` leases of one backend past their expiry and not revoked, across tenants. */
export async function expiredLeases(db: Db, backend: string, limit: number): Promise<Array<Pick<Lease, 'id' | 'username' | 'tenant_id' | 'external_id'>>> {
  return db
    .selectFrom('leases')
    .select(['id', 'username', 'tenant_id', 'external_id'])
    .where('revoked_at', 'is', null)
    .where('backend', '=', backend)
    .where('expires_at', '<=', new Date())
    .limit(limit)
    .execute()
}

/** Marks every live lease of a tenant revoked (the backend revoked them all at once). */
export async function markAllRevoked(db: Db, tenantId: string): Promise<number> {
  const r = await db.updateTable('leases').set({ revoked_at: sql<Date>`now()` }).where('tenant_id', '=', tenantId).where('revoked_at', 'is', null).executeTakeFirst()
  return Number(r.numUpdatedRows)
}

/** Drops the encrypted passwords kept for replays: the tenant's key is being destroyed. */
export async function forgetLeaseSecrets(db: Db, tenantId: string): Promise<void> {
  await db.updateTable('leases').set({ secret: null }).where('tenant_id', '=', tenantId).execute()
}
