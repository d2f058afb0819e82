// wipe: revoke leases, drop the database and every role of the tenant, then
// destroy its key material, and leave a receipt in its history. The registry
// row stays as a tombstone. Nothing is dropped before the tenant's objects are
// proven its own, and the key material goes only once the database is gone,
// so the receipt states what happened and nothing more.
import { dropDatabase } from '../../tenancy/databases.js'
import { dropRole, tenantRoles } from '../../tenancy/roles.js'
import { appendHistory } from '../../lifecycle/transition.js'
import type { StepContext } from '../lifecycle.js'
import { proveOwnership } from './prove.js'

interface Receipt {
  database_dropped: boolean
  roles_dropped: string[]
  leases_revoked: number
  key_material: 'destroyed' | 'none'
}

export async function wipe({ deps, tenant, log, job, checkpoint }: StepContext): Promise<void> {
  const { cluster, config, db, secrets } = deps
  await proveOwnership(cluster, tenant)

  // What earlier attempts already did is carried over, so the receipt is complete.
  const previous = (job.data as { receipt?: Partial<Receipt> }).receipt
  // Leases first: their sessions end before the database goes.
  const leasesRevoked = (await secrets.revokeAll(tenant)) + (previous?.leases_revoked ?? 0)
  const dropped = (await dropDatabase(cluster, tenant.database_name)) || (previous?.database_dropped ?? false)
  await job.updateData({ ...job.data, receipt: { ...previous, leases_revoked: leasesRevoked, database_dropped: dropped } })
  const roles = await tenantRoles(cluster, tenant.owner_role)
  // Lease and migration logins first: they are members of the owner role.
  for (const role of roles.filter((r) => r !== tenant.owner_role)) await dropRole(cluster, config.tenantClusterUrl, role)
  if (roles.includes(tenant.owner_role)) await dropRole(cluster, config.tenantClusterUrl, tenant.owner_role)
  // Only now: had the drop failed, the data would still be there and readable.
  const keys = await secrets.destroy(tenant)
  const key = await db.selectFrom('tenant_keys').select('wrapped_key').where('tenant_id', '=', tenant.id).executeTakeFirst()
  const receipt: Receipt = {
    database_dropped: dropped,
    roles_dropped: [...new Set([...(previous?.roles_dropped ?? []), ...roles])].sort(),
    leases_revoked: leasesRevoked + keys.leases_revoked,
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
