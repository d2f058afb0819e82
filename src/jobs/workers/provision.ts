// Provisioning: owner role, database closed to PUBLIC, tenant migrations.
// Every step checks before it acts, so a rerun, or a run after a crash
// mid-way, ends in the same database.
import { UnrecoverableError } from 'bullmq'
import { ensureDatabase, ForeignDatabaseError, withTenantClient } from '../../tenancy/databases.js'
import { MigrationError, migrateTenant, readTenantMigrations } from '../../tenancy/migrations.js'
import { ensureRole, NotOursError, tenantMarker } from '../../tenancy/roles.js'
import type { StepContext, StepResult } from '../lifecycle.js'

export async function provision({ deps, tenant, checkpoint, log }: StepContext): Promise<StepResult> {
  const { cluster, config } = deps
  const marker = tenantMarker(tenant.id)
  try {
    await checkpoint('role', async () => {
      const outcome = await ensureRole(cluster, tenant.owner_role, marker)
      log.info({ role: tenant.owner_role, outcome }, 'owner role ensured')
    })
    await checkpoint('database', async () => {
      const outcome = await ensureDatabase(cluster, tenant.database_name, tenant.owner_role, marker)
      log.info({ database: tenant.database_name, outcome }, 'database ensured')
    })
  } catch (err) {
    // Someone else's role or database under this tenant's name: never adopt, never retry.
    if (err instanceof ForeignDatabaseError || err instanceof NotOursError) throw new UnrecoverableError(err.message)
    throw err
  }
  await checkpoint('credentials', () => deps.secrets.setup(tenant))
  // Always run: the folder is read afresh, so a tenant is born at the latest version.
  try {
    const migrations = await readTenantMigrations(config.tenantMigrationsDir)
    const schemaVersion = await withTenantClient(config.tenantClusterUrl, tenant.database_name, (client) =>
      migrateTenant(client, tenant.owner_role, migrations),
    )
    log.info({ schemaVersion }, 'tenant migrations applied')
    return { schemaVersion }
  } catch (err) {
    if (err instanceof MigrationError) throw new UnrecoverableError(err.message)
    throw err
  }
}
