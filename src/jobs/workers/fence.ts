// suspend, hibernate, decommission: the database refuses connections, open
// sessions end and every lease is revoked, before the tenant reports the
// stable state. resume, wake, restore: connections are accepted again, once
// any tenant migration that came out meanwhile is applied.
import { fenceDatabase, secureDatabase } from '../../tenancy/databases.js'
import { tenantMarker } from '../../tenancy/identifiers.js'
import { onCluster } from '../../tenancy/ownership.js'
import { recordMigrated, recordMigrationFailure } from '../../db/fleet.js'
import { MigrationError, readTenantMigrations } from '../../tenancy/migrations.js'
import type { StepContext, StepResult } from '../context.js'
import { migrateAsOwner } from './provision.js'
import { proveOwnership } from './prove.js'

export async function fence({ deps, tenant, log, checkpoint }: StepContext): Promise<void> {
  const proven = await proveOwnership(deps.cluster, tenant)
  if (proven.database !== 'absent') {
    await checkpoint('fence', async () => {
      const ended = await fenceDatabase(deps.cluster, tenant.database_name)
      log.info({ database: tenant.database_name, sessionsEnded: ended }, 'database fenced')
    })
  }
  // Not checkpointed: a lease issued between two attempts must go too.
  await deps.secrets.revokeAll(tenant)
  if (proven.database === 'legacy') {
    // Taken from the tenant's role now that no session of it is left.
    await secureDatabase(deps.cluster, deps.config.tenantClusterUrl, onCluster(tenant), tenantMarker(tenant.id), { allowConnections: false })
    log.info({ database: tenant.database_name }, 'database ownership moved to the admin role')
  }
}

export async function unfence({ deps, tenant, log }: StepContext): Promise<StepResult> {
  const proven = await proveOwnership(deps.cluster, tenant)
  if (proven.database === 'absent') throw new Error(`database ${tenant.database_name} is missing; reconcile before resuming`)
  // Idempotent; also takes a database an earlier version let the tenant own.
  await secureDatabase(deps.cluster, deps.config.tenantClusterUrl, onCluster(tenant), tenantMarker(tenant.id), { allowConnections: true })
  log.info({ database: tenant.database_name }, 'database accepts connections')
  return catchUp({ deps, tenant, log })
}

/**
 * A tenant that was not serving during a fleet migration is migrated here,
 * before it reports `active`: no login of it exists yet (fencing revoked them
 * all and none is issued before `active`). A failing migration does not hold
 * the tenant back: it serves at the version it has, is recorded like a fleet
 * failure (towards quarantine) and shows as a laggard in GET /fleet/schema.
 */
async function catchUp({ deps, tenant, log }: Pick<StepContext, 'deps' | 'tenant' | 'log'>): Promise<StepResult> {
  try {
    const migrations = await readTenantMigrations(deps.config.tenantMigrationsDir)
    if ((tenant.schema_version ?? 0) >= (migrations.at(-1)?.version ?? 0)) return {}
    const schemaVersion = await migrateAsOwner(deps.cluster, deps.config.tenantClusterUrl, tenant, migrations, { statementTimeoutMs: deps.config.tenantMigrationTimeoutMs })
    await recordMigrated(deps.db, tenant.id, schemaVersion)
    log.info({ from: tenant.schema_version, schemaVersion }, 'tenant migrations applied before serving')
    return { schemaVersion }
  } catch (err) {
    if (!(err instanceof MigrationError)) throw err
    const quarantined = await recordMigrationFailure(deps.db, tenant.id, err.message, deps.config.fleetQuarantineAfter)
    log.warn({ err, quarantined }, 'tenant migrations failed; the tenant serves at its current version')
    return {}
  }
}
