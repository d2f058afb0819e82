// Principals, their API keys and the tenants they may act on. Only a SHA-256
// of each key is stored (keys are 32 random bytes: no stretching needed, and
// lookups stay indexed).
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import { sql, type Kysely, type Transaction } from 'kysely'
import type { Db } from './index.js'
import type { Database, Principal } from './schema.js'

type Conn = Kysely<Database> | Transaction<Database>

/** Keys start with this, so secret scanners can find one pasted where it should not be. */
export const KEY_PREFIX = 'landlord_'

export function hashKey(key: string): string {
  return createHash('sha256').update(key).digest('hex')
}

export function generateKey(): string {
  return `${KEY_PREFIX}${randomBytes(32).toString('base64url')}`
}

export interface KeyHolder {
  keyId: string
  principal: string
  scopes: string[]
  allTenants: boolean
  mainTenant: string | null
  granted: string[]
  denied: string[]
  lastUsedAt: Date | null
}

/** The principal behind a live key, with what it may reach, in one query; undefined for an unknown, revoked or expired key. */
export async function authenticate(db: Db, key: string): Promise<KeyHolder | undefined> {
  const hash = hashKey(key)
  const row = await db
    .selectFrom('api_keys as k')
    .innerJoin('principals as p', 'p.name', 'k.principal')
    .select([
      'k.id',
      'k.key_hash',
      'k.last_used_at',
      'p.name',
      'p.scopes',
      'p.all_tenants',
      'p.main_tenant',
      sql<string[]>`array(SELECT tenant_id::text FROM principal_grants g WHERE g.principal = p.name)`.as('granted'),
      sql<string[]>`array(SELECT tenant_id::text FROM principal_denials d WHERE d.principal = p.name)`.as('denied'),
    ])
    .where('k.key_hash', '=', hash)
    .where('k.revoked_at', 'is', null)
    .where((eb) => eb.or([eb('k.expires_at', 'is', null), eb('k.expires_at', '>', sql<Date>`now()`)]))
    .executeTakeFirst()
  // The index found the row by hash; the comparison itself does not depend on where the two differ.
  if (!row || !timingSafeEqual(Buffer.from(row.key_hash), Buffer.from(hash))) return undefined
  return {
    keyId: row.id,
    principal: row.name,
    scopes: row.scopes,
    allTenants: row.all_tenants,
    mainTenant: row.main_tenant,
    granted: row.granted,
    denied: row.denied,
    lastUsedAt: row.last_used_at,
  }
}

/** Records a key's use, at most once a minute (a write per request would be a write per request). */
export async function touchKey(db: Db, keyId: string): Promise<void> {
  await db
    .updateTable('api_keys')
    .set({ last_used_at: sql<Date>`now()` })
    .where('id', '=', keyId)
    .where((eb) => eb.or([eb('last_used_at', 'is', null), eb('last_used_at', '<', sql<Date>`now() - interval '1 minute'`)]))
    .execute()
}

export async function insertPrincipal(db: Conn, values: { name: string; scopes: string[]; description: string | null }): Promise<Principal | undefined> {
  return db.insertInto('principals').values(values).onConflict((oc) => oc.column('name').doNothing()).returningAll().executeTakeFirst()
}

export async function findPrincipal(db: Conn, name: string): Promise<Principal | undefined> {
  return db.selectFrom('principals').selectAll().where('name', '=', name).executeTakeFirst()
}

export async function listPrincipals(db: Conn): Promise<Principal[]> {
  return db.selectFrom('principals').selectAll().orderBy('name').execute()
}

export async function updatePrincipal(
  db: Conn,
  name: string,
  patch: { scopes?: string[]; description?: string | null; all_tenants?: boolean; main_tenant?: string | null; main_tenant_lost?: string | null },
) {
  return db.updateTable('principals').set({ ...patch, updated_at: sql<Date>`now()` }).where('name', '=', name).returningAll().executeTakeFirst()
}

export async function deletePrincipal(db: Conn, name: string): Promise<boolean> {
  const r = await db.deleteFrom('principals').where('name', '=', name).executeTakeFirst()
  return r.numDeletedRows > 0n
}

export async function insertKey(db: Conn, values: { principal: string; key_hash: string; name: string | null; expires_at: Date | null }) {
  return db.insertInto('api_keys').values(values).returning(['id', 'name', 'expires_at', 'created_at']).executeTakeFirstOrThrow()
}

export async function listKeys(db: Conn, principal: string) {
  return db
    .selectFrom('api_keys')
    .select(['id', 'name', 'bootstrap', 'created_at', 'expires_at', 'last_used_at', 'revoked_at'])
    .where('principal', '=', principal)
    .orderBy('created_at')
    .execute()
}

/** Revokes one live key of a principal; false when there is none such. */
export async function revokeKey(db: Conn, principal: string, keyId: string): Promise<boolean> {
  const r = await db
    .updateTable('api_keys')
    .set({ revoked_at: sql<Date>`now()` })
    .where('principal', '=', principal)
    .where('id', '=', keyId)
    .where('revoked_at', 'is', null)
    .executeTakeFirst()
  return r.numUpdatedRows > 0n
}

export type AccessList = 'principal_grants' | 'principal_denials'

export async function addToList(db: Conn, list: AccessList, principal: string, tenantId: string): Promise<void> {
  await db.insertInto(list).values({ principal, tenant_id: tenantId }).onConflict((oc) => oc.doNothing()).execute()
}

export async function removeFromList(db: Conn, list: AccessList, principal: string, tenantId: string): Promise<boolean> {
  const r = await db.deleteFrom(list).where('principal', '=', principal).where('tenant_id', '=', tenantId).executeTakeFirst()
  return r.numDeletedRows > 0n
}

/** The tenants on a principal's list, with their slugs. */
export async function listed(db: Conn, list: AccessList, principal: string) {
  return db
    .selectFrom(`${list} as l`)
    .innerJoin('tenants as t', 't.id', 'l.tenant_id')
    .select(['t.id', 't.slug', 't.state'])
    .where('l.principal', '=', principal)
    .orderBy('t.slug')
    .execute()
}

/**
 * A wiped tenant leaves no trace in anyone's access: its grants and denials
 * go, and principals that landed on it are told why (`main_tenant_lost`).
 */
export async function forgetTenant(trx: Transaction<Database>, tenantId: string, slug: string): Promise<void> {
  await trx.deleteFrom('principal_grants').where('tenant_id', '=', tenantId).execute()
  await trx.deleteFrom('principal_denials').where('tenant_id', '=', tenantId).execute()
  await trx
    .updateTable('principals')
    .set({ main_tenant: null, main_tenant_lost: `tenant ${slug} was wiped`, updated_at: sql<Date>`now()` })
    .where('main_tenant', '=', tenantId)
    .execute()
}
