// The bootstrap key of the `admin` principal (every scope, every tenant):
// LANDLORD_ADMIN_KEY, or one generated at the first start.
import { sql } from 'kysely'
import type { Db } from './index.js'
import { generateKey, hashKey } from './principals.js'

export { hashKey }

export const ADMIN_PRINCIPAL = 'admin'

/**
 * Makes sure an admin key exists. With LANDLORD_ADMIN_KEY set, its hash is
 * stored and any earlier bootstrap key is revoked (changing the variable
 * rotates the key). Without it, and with no key stored yet, a key is generated
 * and returned so the caller can print it once.
 */
export async function ensureAdminKey(db: Db, adminKey: string | undefined): Promise<string | undefined> {
  return db.transaction().execute(async (trx) => {
    // Serialises starts racing here (the table may be empty: nothing to row-lock).
    await sql`SELECT pg_advisory_xact_lock(hashtext('landlord.admin_key'))`.execute(trx)
    if (adminKey !== undefined) {
      const hash = hashKey(adminKey)
      await trx
        .insertInto('api_keys')
        .values({ principal: ADMIN_PRINCIPAL, key_hash: hash, bootstrap: true })
        .onConflict((oc) => oc.column('key_hash').doUpdateSet({ revoked_at: null }))
        .execute()
      await trx
        .updateTable('api_keys')
        .set({ revoked_at: sql<Date>`now()` })
        .where('bootstrap', '=', true)
        .where('key_hash', '!=', hash)
        .where('revoked_at', 'is', null)
        .execute()
      return undefined
    }
    const any = await trx.selectFrom('api_keys').select('id').where('revoked_at', 'is', null).limit(1).executeTakeFirst()
    if (any) return undefined
    const key = generateKey()
    await trx.insertInto('api_keys').values({ principal: ADMIN_PRINCIPAL, key_hash: hashKey(key), bootstrap: true }).execute()
    return key
  })
}
