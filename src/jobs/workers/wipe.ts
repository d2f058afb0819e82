// wipe: revoke leases, drop the database and every role of the tenant, destroy
// its key material, and leave a receipt in its history. The registry row stays
// as a tombstone.
import { dropDatabase } from '../../tenancy/databases.js'
import { dropRole, tenantRoles } from '../../tenancy/roles.js'
import type { StepContext } from '../lifecycle.js'

export async function wipe({ deps, tenant, log, job, checkpoint }: StepContext): Promise<void> {
  const { cluster, db, secrets } = deps
  const keys = await secrets.destroy(tenant)
  const key = await db.selectFrom('tenant_keys').select('wrapped_key').where('tenant_id', '=', tenant.id).executeTakeFirst()
  const databaseDropped = await dropDatabase(cluster, tenant.database_name)
  const roles = await tenantRoles(cluster, tenant.owner_role)
  // Lease roles first: they are members of the owner role.
  for (const role of roles.filter((r) => r !== tenant.owner_role)) await dropRole(cluster, role)
  if (roles.includes(tenant.owner_role)) await dropRole(cluster, tenant.owner_role)

  const requested = await db
    .selectFrom('tenant_events')
    .select(['actor', 'created_at', 'type'])
    .where('tenant_id', '=', tenant.id)
    .where('to_state', '=', 'wiping')
    .orderBy('id', 'desc')
    .executeTakeFirst()
  const receipt = {
    database: { name: tenant.database_name, dropped: databaseDropped },
    roles_dropped: roles,
    leases_revoked: keys.leases_revoked,
    key_material_destroyed: key?.wrapped_key == null,
    requested_by: requested?.actor ?? null,
    requested_with: requested?.type ?? null,
    requested_at: requested?.created_at.toISOString() ?? null,
    job_id: job.id ?? null,
  }
  await checkpoint('receipt', async () => {
    await db
      .insertInto('tenant_events')
      .values({
        tenant_id: tenant.id,
        type: 'WIPE_RECEIPT',
        from_state: 'wiping',
        to_state: 'wiping',
        actor: 'worker',
        data: JSON.stringify({ ...receipt, wiped_at: new Date().toISOString() }),
      })
      .execute()
  })
  log.info({ database: tenant.database_name, roles: roles.length }, 'tenant wiped')
}
