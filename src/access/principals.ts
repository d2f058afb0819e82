// Managing who may do what: principals and their scopes, keys (shown once,
// only a hash kept), the tenants each is granted or denied, and the tenant it
// lands on. The bootstrap `admin` principal keeps every scope and tenant.
import { isUuid, type Db } from '../db/index.js'
import { ADMIN_PRINCIPAL } from '../db/api-keys.js'
import {
  addToList,
  deletePrincipal,
  findPrincipal,
  generateKey,
  hashKey,
  insertKey,
  insertPrincipal,
  listed,
  listKeys,
  listPrincipals,
  removeFromList,
  revokeKey,
  updatePrincipal,
  type AccessList,
} from '../db/principals.js'
import type { Principal } from '../db/schema.js'
import { findTenant } from '../db/tenants.js'
import {
  invalidExpiry,
  keyNotFound,
  principalExists,
  principalNotFound,
  principalProtected,
  tenantNotFound,
  tenantNotGranted,
  wildcardDenial,
} from '../errors.js'
import { canSee } from './access.js'
import type { Scope } from './scopes.js'

export { listPrincipals }

export async function getPrincipal(db: Db, name: string): Promise<Principal> {
  const p = await findPrincipal(db, name)
  if (!p) throw principalNotFound(name)
  return p
}

export async function createPrincipal(db: Db, input: { name: string; scopes: Scope[]; description?: string }): Promise<Principal> {
  const p = await insertPrincipal(db, { name: input.name, scopes: [...new Set(input.scopes)], description: input.description ?? null })
  if (!p) throw principalExists(input.name)
  return p
}

export async function changePrincipal(db: Db, name: string, patch: { scopes?: Scope[]; description?: string | null }): Promise<Principal> {
  await getPrincipal(db, name)
  if (name === ADMIN_PRINCIPAL && patch.scopes !== undefined) throw principalProtected(name)
  const p = await updatePrincipal(db, name, { ...patch, ...(patch.scopes ? { scopes: [...new Set(patch.scopes)] } : {}) })
  return p!
}

export async function removePrincipal(db: Db, name: string): Promise<void> {
  if (name === ADMIN_PRINCIPAL) throw principalProtected(name)
  if (!(await deletePrincipal(db, name))) throw principalNotFound(name)
}

/** A new key: returned once, with its secret; only its hash is kept. */
export async function createKey(db: Db, principal: string, input: { name?: string; expires_at?: string }) {
  await getPrincipal(db, principal)
  // The bootstrap principal's key is LANDLORD_ADMIN_KEY (rotated by changing it), never one minted here.
  if (principal === ADMIN_PRINCIPAL) throw principalProtected(principal)
  const expires = input.expires_at === undefined ? null : new Date(input.expires_at)
  // Invalid (a leap second, say) or past.
  if (expires && !(expires.getTime() > Date.now())) throw invalidExpiry()
  const key = generateKey()
  const row = await insertKey(db, { principal, key_hash: hashKey(key), name: input.name ?? null, expires_at: expires })
  return { ...row, key }
}

export async function keysOf(db: Db, principal: string) {
  await getPrincipal(db, principal)
  return listKeys(db, principal)
}

export async function revokePrincipalKey(db: Db, principal: string, keyId: string): Promise<void> {
  await getPrincipal(db, principal)
  // The bootstrap key goes only by changing LANDLORD_ADMIN_KEY: no one can lock the admin out.
  if (principal === ADMIN_PRINCIPAL) throw principalProtected(principal)
  if (!isUuid(keyId) || !(await revokeKey(db, principal, keyId))) throw keyNotFound(keyId)
}

/** What a principal may reach, with slugs. */
export async function effectiveAccess(db: Db, name: string) {
  const p = await getPrincipal(db, name)
  const [grants, denials] = await Promise.all([listed(db, 'principal_grants', name), listed(db, 'principal_denials', name)])
  const main = p.main_tenant ? await findTenant(db, p.main_tenant) : undefined
  const visible = { all: p.all_tenants, granted: grants.map((g) => g.id), denied: denials.map((d) => d.id) }
  return {
    principal: p.name,
    all_tenants: p.all_tenants,
    grants: grants.map(({ id, slug }) => ({ id, slug })),
    denials: denials.map(({ id, slug }) => ({ id, slug })),
    main_tenant: main ? { id: main.id, slug: main.slug, state: main.state, granted: canSee(visible, main.id) } : null,
    main_tenant_lost: p.main_tenant_lost,
  }
}

async function tenantId(db: Db, ref: string): Promise<string> {
  const t = await findTenant(db, ref)
  if (!t || t.state === 'wiped') throw tenantNotFound(ref)
  return t.id
}

/** Grants one tenant, or every tenant with `*`. */
export async function grant(db: Db, name: string, ref: string) {
  return changeList(db, name, ref, 'principal_grants', 'add')
}

export async function revokeGrant(db: Db, name: string, ref: string) {
  return changeList(db, name, ref, 'principal_grants', 'remove')
}

/** Excludes one tenant from the principal's access, even from a `*` grant. */
export async function deny(db: Db, name: string, ref: string) {
  return changeList(db, name, ref, 'principal_denials', 'add')
}

export async function removeDenial(db: Db, name: string, ref: string) {
  return changeList(db, name, ref, 'principal_denials', 'remove')
}

async function changeList(db: Db, name: string, ref: string, list: AccessList, op: 'add' | 'remove') {
  await getPrincipal(db, name)
  if (name === ADMIN_PRINCIPAL) throw principalProtected(name)
  if (ref === '*') {
    if (list === 'principal_denials') throw wildcardDenial()
    await updatePrincipal(db, name, { all_tenants: op === 'add' })
  } else {
    const id = await tenantId(db, ref)
    if (op === 'add') await addToList(db, list, name, id)
    else await removeFromList(db, list, name, id)
  }
  return effectiveAccess(db, name)
}

/** The tenant a principal lands on: one it may act on. */
export async function setMainTenant(db: Db, name: string, ref: string) {
  const access = await effectiveAccess(db, name)
  const id = await tenantId(db, ref)
  const visible = { all: access.all_tenants, granted: access.grants.map((g) => g.id), denied: access.denials.map((d) => d.id) }
  if (!canSee(visible, id)) throw tenantNotGranted(ref, name)
  await updatePrincipal(db, name, { main_tenant: id, main_tenant_lost: null })
  return effectiveAccess(db, name)
}
