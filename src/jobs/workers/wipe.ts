// wipe: revoke leases, drop the database and every role of the tenant, destroy
// its key material, and leave a receipt in its history. The registry row stays
// as a tombstone. Before anything is dropped, the owner role's marker must name
// this tenant: a database that merely has the right name is never dropped.
import { UnrecoverableError } from 'bullmq'
import { dropDatabase } from '../../tenancy/databases.js'
import { dropRole, roleMarker, tenantMarker, tenantRoles } from '../../tenancy/roles.js'
import { appendHistory } from '../../lifecycle/transition.js'
import type { StepContext } from '../lifecycle.js'

interface Receipt {
  database_dropped: boolean
  roles_dropped: string[]
  leases_revoked: number
  key_material: 'destroyed' | 'none'
}

export async function wipe({ deps, tenant, log, job, checkpoint }: StepContext): Promise<void> {
  const { cluster, db, secrets } = deps
  const marker = await roleMarker(cluster, tenant.owner_role)
  const dbOwner = await cluster.query<{ owner: string }>('SELECT pg_get_userbyid(datdba) AS owner FROM pg_database WHERE datname = $1', [
    tenant.database_name,
  ])
  const foreignDb = dbOwner.rows[0] !== undefined && dbOwner.rows[0].owner !== tenant.owner_role
  if ((marker !== undefined && marker !== tenantMarker(tenant.id)) || foreignDb) {
    throw new UnrecoverableError(`${tenant.database_name} or ${tenant.owner_role} was not made by Landlord for this tenant; refusing to drop it`)
  }

  // What earlier attempts already did is carried over, so the receipt is complete.
  const previous = (job.data as { receipt?: Receipt }).receipt
  const keys = await secrets.destroy(tenant)
  const key = await db.selectFrom('tenant_keys').select('wrapped_key').where('tenant_id', '=', tenant.id).executeTakeFirst()
  const dropped = await dropDatabase(cluster, tenant.database_name)
  const roles = await tenantRoles(cluster, tenant.owner_role)
  // Lease roles first: they are members of the owner role.
  for (const role of roles.filter((r) => r !== tenant.owner_role)) await dropRole(cluster, role)
  if (roles.includes(tenant.owner_role)) await dropRole(cluster, tenant.owner_role)
  const receipt: Receipt = {
    database_dropped: dropped || (previous?.database_dropped ?? false),
    roles_dropped: [...new Set([...(previous?.roles_dropped ?? []), ...roles])].sort(),
    leases_revoked: keys.leases_revoked + (previous?.leases_revoked ?? 0),
    key_material: key && key.wrapped_key === null ? 'destroyed' : 'none',
  }
  await job.updateData({ ...job.data, receipt })

  const requested = await db
    .selectFrom('tenant_events')
    .select(['actor', 'created_at', 'type'])
    .where('tenant_id', '=', tenant.id)
    .where('to_state', '=', 'wiping')
    .orderBy('id', 'desc')
    .executeTakeFirst()
  await checkpoint('receipt', async () => {
    await appendHistory(db, tenant, 'WIPE_RECEIPT', 'worker', {
      database: { name: tenant.database_name, dropped: receipt.database_dropped },
      roles_dropped: receipt.roles_dropped,
      leases_revoked: receipt.leases_revoked,
      key_material: receipt.key_material,
      requested_by: requested?.actor ?? null,
      requested_with: requested?.type ?? null,
      requested_at: requested?.created_at.toISOString() ?? null,
      job_id: job.id ?? null,
      wiped_at: new Date().toISOString(),
    })
  })
  log.info({ database: tenant.database_name, roles: receipt.roles_dropped.length }, 'tenant wiped')
}
