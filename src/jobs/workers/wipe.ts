// wipe: revoke leases, drop the database and every role of the tenant, then
// destroy its key material, and leave a receipt in its history. The registry
// row stays as a tombstone. Nothing is dropped before the tenant's objects are
// proven its own, and the key material goes only once the database is gone,
// so the receipt states what happened and nothing more.
import { lastEntryInto } from '../../db/history.js'
import { findTenantKey } from '../../db/keys.js'
import { dropDatabase, fenceDatabase } from '../../tenancy/databases.js'
import { dropRole, tenantRoles } from '../../tenancy/roles.js'
import { appendHistory } from '../../lifecycle/transition.js'
import type { StepContext } from '../context.js'
import { proveOwnership } from './prove.js'

interface Receipt {
  /** What the secrets backend removed outside the control database (Vault's role and transit key). */
  secrets_removed?: Record<string, string>
  database_dropped: boolean
  roles_dropped: string[]
  /** Roles that could not be dropped, NOLOGIN, and why. */
  roles_left: Array<{ role: string; reason: string }>
  leases_revoked: number
  key_material: 'destroyed' | 'none'
}

export async function wipe({ deps, tenant, log, job, checkpoint }: StepContext): Promise<void> {
  const { cluster, config, db, secrets } = deps
  await proveOwnership(cluster, tenant)

  // What earlier attempts already did is carried over, so the receipt is complete.
  const previous = (job.data as { receipt?: Partial<Receipt> }).receipt
  // Fenced first: the tenant's sessions end and cannot come back, so none of
  // them can hold a lock the lease revocation below would wait on.
  await fenceDatabase(cluster, tenant.database_name)
  const leasesRevoked = (await secrets.revokeAll(tenant)) + (previous?.leases_revoked ?? 0)
  const dropped = (await dropDatabase(cluster, tenant.database_name)) || (previous?.database_dropped ?? false)
  await job.updateData({ ...job.data, receipt: { ...previous, leases_revoked: leasesRevoked, database_dropped: dropped } })
  const roles = await tenantRoles(cluster, tenant.owner_role)
  // Lease and migration logins first: they are members of the owner role.
  const order = [...roles.filter((r) => r !== tenant.owner_role), ...roles.filter((r) => r === tenant.owner_role)]
  const droppedRoles: string[] = []
  const left: Receipt['roles_left'] = []
  for (const role of order) {
    const outcome = await dropRole(cluster, config.tenantClusterUrl, role)
    if (outcome.dropped) droppedRoles.push(role)
    else if (outcome.left) left.push({ role, reason: outcome.left })
  }
  // Only now: had the drop failed, the data would still be there and readable.
  const keys = await secrets.destroy(tenant)
  const key = await findTenantKey(db, tenant.id)
  const receipt: Receipt = {
    database_dropped: dropped,
    roles_dropped: [...new Set([...(previous?.roles_dropped ?? []), ...droppedRoles])].sort(),
    roles_left: left,
    leases_revoked: leasesRevoked + keys.leases_revoked,
    ...(keys.removed ? { secrets_removed: keys.removed } : {}),
    key_material: key && key.wrapped_key === null ? 'destroyed' : 'none',
  }
  await job.updateData({ ...job.data, receipt })

  const requested = await lastEntryInto(db, tenant.id, 'wiping')
  await checkpoint('receipt', async () => {
    await appendHistory(db, tenant, 'WIPE_RECEIPT', 'worker', {
      database: { name: tenant.database_name, dropped: receipt.database_dropped },
      roles_dropped: receipt.roles_dropped,
      ...(receipt.roles_left.length > 0 ? { roles_left: receipt.roles_left } : {}),
      leases_revoked: receipt.leases_revoked,
      ...(receipt.secrets_removed ? { secrets_removed: receipt.secrets_removed } : {}),
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
