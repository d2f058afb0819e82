// What one request may do: its principal's scopes, and the tenants it may act
// on (grants, or every tenant, less denials). Read afresh on each request, so
// a revoked key, scope or grant takes effect on the next one.
import { seesEveryTenant, type TenantVisibility } from '../db/index.js'
import type { KeyHolder } from '../db/principals.js'
import type { Scope } from './scopes.js'

export interface Access {
  principal: string
  keyId: string
  scopes: ReadonlySet<string>
  visible: TenantVisibility
  mainTenant: string | null
}

export function accessOf(holder: KeyHolder): Access {
  return {
    principal: holder.principal,
    keyId: holder.keyId,
    scopes: new Set(holder.scopes),
    visible: { all: holder.allTenants, granted: holder.granted, denied: holder.denied },
    mainTenant: holder.mainTenant,
  }
}

/** `admin` passes every scope check; grants still decide which tenants. */
export function hasScope(access: Access, scope: Scope): boolean {
  return access.scopes.has('admin') || access.scopes.has(scope)
}

/** A denial beats a grant. */
export function canSee(visible: TenantVisibility, tenantId: string): boolean {
  return !visible.denied.includes(tenantId) && (visible.all || visible.granted.includes(tenantId))
}

export { seesEveryTenant }
