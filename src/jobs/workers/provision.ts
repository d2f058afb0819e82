// Provisioning: owner role, database closed to everyone but the tenant,
// tenant migrations. Every step checks before it acts, so a rerun, or a run
// after a crash mid-way, ends in the same database.
import { UnrecoverableError } from 'bullmq'
import { ensureDatabase } from '../../tenancy/databases.js'
import { NotOursError, tenantMarker } from '../../tenancy/identifiers.js'
import { MigrationError, migrateTenant, readTenantMigrations, type MigrateOptions } from '../../tenancy/migrations.js'
import { onCluster } from '../../tenancy/ownership.js'
import { withOwnerLogin } from '../../tenancy/owner-login.js'
import { ensureRole } from '../../tenancy/roles.js'
import type { StepContext, StepResult } from '../context.js'
import { proveOwnership } from './prove.js'

export async function provision({ deps, tenant, checkpoint, log }: StepContext): Promise<StepResult> {
  const { cluster, config } = deps
  const marker = tenantMarker(tenant.id)
  const names = onCluster(tenant)
  try {
    await checkpoint('role', async () => {
      const outcome = await ensureRole(cluster, tenant.owner_role, marker)
      log.info({ role: tenant.owner_role, outcome }, 'owner role ensured')
    })
    // Not checkpointed: a restore of a tenant decommissioned before it was
    // ever provisioned finds its database fenced, and this opens it again.
    const outcome = await ensureDatabase(cluster, config.tenantClusterUrl, names, marker)
    log.info({ database: tenant.database_name, outcome }, 'database ensured')
  } catch (err) {
    // Someone else's role or database under this tenant's name: never adopt, never retry.
    if (err instanceof NotOursError) throw new UnrecoverableError(err.message)
    throw err
  }
  await checkpoint('credentials', () => deps.secrets.setup(tenant))
  // Always run: the folder is read afresh, so a tenant is born at the latest version.
  try {
    const migrations = await readTenantMigrations(config.tenantMigrationsDir)
    const schemaVersion = await migrateAsOwner(deps.cluster, config.tenantClusterUrl, tenant, migrations, { statementTimeoutMs: config.tenantMigrationTimeoutMs })
    log.info({ schemaVersion }, 'tenant migrations applied')
    return { schemaVersion }
  } catch (err) {
    if (err instanceof MigrationError) throw new UnrecoverableError(err.message)
    throw err
  }
}

/** Proves the tenant's objects, then migrates its database as a login of its owner role. */
export async function migrateAsOwner(
  cluster: StepContext['deps']['cluster'],
  clusterUrl: string,
  tenant: StepContext['tenant'],
  migrations: Awaited<ReturnType<typeof readTenantMigrations>>,
  opts: MigrateOptions & { statementTimeoutMs?: number } = {},
): Promise<number> {
  await proveOwnership(cluster, tenant)
  const session = { statementTimeoutMs: opts.statementTimeoutMs }
  return withOwnerLogin(cluster, clusterUrl, onCluster(tenant), (client) => migrateTenant(client, migrations, opts), session)
}
