// suspend, hibernate, decommission: the database refuses connections, open
// sessions end and every lease is revoked, before the tenant reports the
// stable state. resume, wake, restore: connections are accepted again.
import { acceptsConnections, databaseExists, fenceDatabase, unfenceDatabase } from '../../tenancy/databases.js'
import type { StepContext } from '../lifecycle.js'

export async function fence({ deps, tenant, log, checkpoint }: StepContext): Promise<void> {
  await checkpoint('fence', async () => {
    const ended = await fenceDatabase(deps.cluster, tenant.database_name)
    log.info({ database: tenant.database_name, sessionsEnded: ended }, 'database fenced')
  })
  // Not checkpointed: a lease issued between two attempts must go too.
  await deps.secrets.revokeAll(tenant)
}

export async function unfence({ deps, tenant, log }: StepContext): Promise<void> {
  if (!(await databaseExists(deps.cluster, tenant.database_name))) {
    throw new Error(`database ${tenant.database_name} is missing; reconcile before resuming`)
  }
  if (!(await acceptsConnections(deps.cluster, tenant.database_name))) {
    await unfenceDatabase(deps.cluster, tenant.database_name)
    log.info({ database: tenant.database_name }, 'database accepts connections')
  }
}
