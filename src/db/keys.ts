// Tenant data keys, stored wrapped by the master key (secrets/local.ts).
import { sql, type Selectable } from 'kysely'
import type { Db } from './index.js'
import { forgetLeaseSecrets } from './leases.js'
import type { TenantKeyTable } from './schema.js'

export type TenantKey = Selectable<TenantKeyTable>

/** Stores a tenant's wrapped key unless it has one (destroyed or not). */
export async function insertTenantKey(db: Db, tenantId: string, wrappedKey: Buffer): Promise<void> {
  await db
    .insertInto('tenant_keys')
    .values({ tenant_id: tenantId, wrapped_key: wrappedKey })
    .onConflict((oc) => oc.column('tenant_id').doNothing())
    .execute()
}

export async function findTenantKey(db: Db, tenantId: string): Promise<TenantKey | undefined> {
  return db.selectFrom('tenant_keys').selectAll().where('tenant_id', '=', tenantId).executeTakeFirst()
}

/** Forgets a tenant's wrapped key for good; false when it was already gone. */
export async function destroyTenantKey(db: Db, tenantId: string): Promise<boolean> {
  const destroyed = await db
    .updateTable('tenant_keys')
    .set({ wrapped_key: null, destroyed_at: sql<Date>`now()` })
    .where('tenant_id', '=', tenantId)
    .where('wrapped_key', 'is not', null)
    .executeTakeFirst()
  return destroyed.numUpdatedRows > 0n
}

/** Destroys a tenant's key and the lease passwords it encrypted, together; false when the key was already gone. */
export async function shredTenantKey(db: Db, tenantId: string): Promise<boolean> {
  return db.transaction().execute(async (trx) => {
    const destroyed = await destroyTenantKey(trx, tenantId)
    await forgetLeaseSecrets(trx, tenantId)
    return destroyed
  })
}

/** Replaces a live wrapped key (re-wrapped under another key-encryption key); false when it is destroyed or missing. */
export async function rewrapTenantKey(db: Db, tenantId: string, from: Buffer, to: Buffer): Promise<boolean> {
  const r = await db
    .updateTable('tenant_keys')
    .set({ wrapped_key: to })
    .where('tenant_id', '=', tenantId)
    .where('wrapped_key', '=', from)
    .executeTakeFirst()
  return r.numUpdatedRows > 0n
}
