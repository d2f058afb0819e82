// API keys: only a SHA-256 of each key is stored. Keys are 32 random bytes, so a
// fast hash is enough (no password stretching needed) and lookups stay indexed.
import { createHash, randomBytes } from 'node:crypto'
import { sql } from 'kysely'
import type { Db } from './index.js'

export const ADMIN_PRINCIPAL = 'admin'

export function hashKey(key: string): string {
  return createHash('sha256').update(key).digest('hex')
}

export function generateKey(): string {
  return `ll_${randomBytes(32).toString('base64url')}`
}

/** The principal a presented key belongs to, or undefined. */
export async function authenticate(db: Db, key: string): Promise<string | undefined> {
  const row = await db
    .selectFrom('api_keys')
    .select('principal')
    .where('key_hash', '=', hashKey(key))
    .where('revoked_at', 'is', null)
    .executeTakeFirst()
  return row?.principal
}

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
