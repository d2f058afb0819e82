// Every step that touches a tenant's database or roles first proves they are
// this tenant's. Foreign objects are never changed: the step gives up at once
// (no retry can make them ours) and the tenant is failed with the reason.
import { UnrecoverableError } from 'bullmq'
import type pg from 'pg'
import type { Tenant } from '../../db/schema.js'
import { checkOwnership, onCluster, type Ownership } from '../../tenancy/ownership.js'

export type Proven = Extract<Ownership, { ours: true }>

export async function proveOwnership(cluster: pg.Pool, tenant: Tenant): Promise<Proven> {
  const found = await checkOwnership(cluster, onCluster(tenant))
  if (!found.ours) throw new UnrecoverableError(found.reason)
  return found
}
