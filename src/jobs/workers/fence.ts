// suspend, hibernate, decommission: the database refuses connections, open
// sessions end and every lease is revoked, before the tenant reports the
// stable state. resume, wake, restore: connections are accepted again.
import { fenceDatabase, secureDatabase } from '../../tenancy/databases.js'
import { tenantMarker } from '../../tenancy/identifiers.js'
import { onCluster } from '../../tenancy/ownership.js'
import type { StepContext } from '../context.js'
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

export async function unfence({ deps, tenant, log }: StepContext): Promise<void> {
  const proven = await proveOwnership(deps.cluster, tenant)
  if (proven.database === 'absent') throw new Error(`database ${tenant.database_name} is missing; reconcile before resuming`)
  // Idempotent; also takes a database an earlier version let the tenant own.
  await secureDatabase(deps.cluster, deps.config.tenantClusterUrl, onCluster(tenant), tenantMarker(tenant.id), { allowConnections: true })
  log.info({ database: tenant.database_name }, 'database accepts connections')
}
