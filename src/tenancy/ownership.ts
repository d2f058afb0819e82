// Proof that the database and role of a tenant's name are this tenant's,
// before any step touches them. Names alone can collide (a squatter, another
// instance whose prefix overlaps, an old backup of the registry); markers and
// ownership are what Landlord checks.
import type pg from 'pg'
import { inspectDatabase, type TenantObjects } from './databases.js'
import { tenantMarker } from './identifiers.js'
import { roleMarker } from './roles.js'

export interface TenantOnCluster extends TenantObjects {
  id: string
}

export type Ownership =
  | { ours: true; database: 'absent' | 'ours' | 'legacy'; role: 'absent' | 'ours' }
  | { ours: false; reason: string }

/** Whether the tenant's role and database, where they exist, are provably this tenant's. */
export async function checkOwnership(admin: pg.Pool, tenant: TenantOnCluster): Promise<Ownership> {
  const marker = tenantMarker(tenant.id)
  const role = await roleMarker(admin, tenant.owner)
  if (role !== undefined && role !== marker) {
    return { ours: false, reason: `role ${tenant.owner} exists but was not made by Landlord for this tenant; refusing to touch it` }
  }
  const database = await inspectDatabase(admin, tenant.database, tenant.owner, marker)
  if (database.kind === 'foreign') return { ours: false, reason: database.reason }
  // A database owned by the tenant's role is only as good as that role's marker.
  if (database.kind === 'ours' && database.legacy && role === undefined) {
    return { ours: false, reason: `database ${tenant.database} is owned by a role Landlord cannot vouch for; refusing to touch it` }
  }
  return {
    ours: true,
    database: database.kind === 'absent' ? 'absent' : database.legacy ? 'legacy' : 'ours',
    role: role === undefined ? 'absent' : 'ours',
  }
}

/** The names of a registry row on its cluster. */
export function onCluster(tenant: { id: string; database_name: string; owner_role: string }): TenantOnCluster {
  return { id: tenant.id, database: tenant.database_name, owner: tenant.owner_role }
}
