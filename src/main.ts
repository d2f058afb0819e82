// Process wiring: the only place that opens pools, listens, starts workers and
// handles SIGTERM. `start` runs the API and the workers in one process; `api`
// and `worker` run one side each, for scale-out.
import pg from 'pg'
import { Redis } from 'ioredis'
import { buildApp } from './api/app.js'
import type { Config } from './config.js'
import { ensureAdminKey } from './db/api-keys.js'
import { createDb, databaseName, redactUrl, type Db } from './db/index.js'
import { ensureControlDatabase, migrateToLatest } from './db/migrate.js'
import { startWorkers } from './jobs/index.js'
import { serveWorkerMetrics } from './jobs/metrics-server.js'
import { createProducerConnection, createQueues } from './jobs/queues.js'
import { createLogger, type Logger } from './log.js'
import { createSecretsBackend } from './secrets/index.js'
import { loadMasterKey, verifyMasterKey } from './secrets/master-key.js'
import { hardenCluster } from './tenancy/cluster.js'
import { ensureConfigEndpoint } from './webhooks/endpoints.js'

export type Mode = 'start' | 'api' | 'worker'

/** A dependency that cannot be reached at start: one line, naming what and how to fix it. */
export class UnreachableError extends Error {}

function unreachable(what: string, variable: string, url: string, err: unknown, service: string): UnreachableError {
  const reason = (err as { code?: string }).code ?? (err as Error).message
  return new UnreachableError(
    `cannot reach ${what} at ${redactUrl(url)} (${variable}): ${reason}. ` +
      `Start it with \`docker compose up -d ${service}\` or the local service, or point ${variable} at it.`,
  )
}

export async function prepareControlPlane(config: Config, log: Logger): Promise<Db> {
  try {
    if (await ensureControlDatabase(config.databaseUrl)) log.info('control-plane database created')
  } catch (err) {
    throw unreachable('PostgreSQL', 'DATABASE_URL', config.databaseUrl, err, 'postgres')
  }
  const db = createDb(config.databaseUrl)
  const result = await migrateToLatest(db)
  for (const r of result.results ?? []) log.info({ migration: r.migrationName }, 'control-plane migration applied')
  return db
}

async function checkRedis(config: Config): Promise<Redis> {
  const redis = createProducerConnection(config)
  redis.on('error', () => {}) // reported through readiness and job errors, not once per reconnect
  try {
    await redis.connect()
    await redis.ping()
  } catch (err) {
    redis.disconnect()
    throw unreachable('Redis', 'REDIS_URL', config.redisUrl, err, 'redis')
  }
  return redis
}

/**
 * Closes the tenant cluster's maintenance databases (and the control database,
 * when it lives there) to tenant logins. Lacking the privilege is fatal unless
 * TENANT_CLUSTER_HARDENING=warn; databases that are not Landlord's are named.
 */
async function hardenTenantCluster(config: Config, cluster: pg.Pool, log: Logger): Promise<void> {
  const control = new URL(config.databaseUrl)
  const tenants = new URL(config.tenantClusterUrl)
  const sameServer = control.host === tenants.host
  const report = await hardenCluster(cluster, sameServer ? [databaseName(config.databaseUrl)] : [])
  if (report.closed.length > 0) log.info({ databases: report.closed }, 'tenant cluster hardened: CONNECT revoked from PUBLIC')
  if (report.refused.length > 0) {
    const names = report.refused.join(', ')
    if (config.clusterHardening === 'enforce') {
      throw new UnreachableError(
        `cannot revoke CONNECT from PUBLIC on ${names} (TENANT_CLUSTER_URL's role lacks the privilege): tenant logins could reach them. ` +
          'Run Landlord with a role that owns them, revoke it by hand, or set TENANT_CLUSTER_HARDENING=warn on a shared cluster.',
      )
    }
    log.warn({ databases: report.refused }, 'tenant logins can connect to these databases: CONNECT could not be revoked from PUBLIC')
  }
  const others = report.open.filter((d) => !report.refused.includes(d))
  if (others.length > 0) {
    log.warn({ databases: others }, 'databases on the tenant cluster open to every login, tenant logins included; revoke CONNECT from PUBLIC on them')
  }
}

async function checkCluster(config: Config): Promise<pg.Pool> {
  const cluster = new pg.Pool({ connectionString: config.tenantClusterUrl, max: 4, application_name: 'landlord-admin' })
  try {
    await cluster.query('SELECT 1')
  } catch (err) {
    await cluster.end()
    throw unreachable('the tenant cluster', 'TENANT_CLUSTER_URL', config.tenantClusterUrl, err, 'postgres')
  }
  return cluster
}

export async function run(config: Config, mode: Mode): Promise<() => Promise<void>> {
  const log = createLogger(config.logLevel)
  const db = await prepareControlPlane(config, log)
  const closers: Array<() => Promise<unknown>> = [() => db.destroy()]
  const shutdown = async () => {
    for (const close of closers.reverse()) await close().catch((err: unknown) => log.error({ err }, 'shutdown step failed'))
  }
  try {
    const generated = await ensureAdminKey(db, config.adminKey)
    if (generated) {
      // Printed once, never logged: only its hash is stored.
      process.stdout.write(
        `\nNo API key was configured, so Landlord made one. It is shown only now; keep it:\n\n  ${generated}\n\n` +
          'Set LANDLORD_ADMIN_KEY to choose your own.\n\n',
      )
    }
    const redis = await checkRedis(config)
    closers.push(() => redis.quit())

    // Both sides need the cluster: workers apply effects, the API issues credentials.
    const cluster = await checkCluster(config)
    closers.push(() => cluster.end())
    await hardenTenantCluster(config, cluster, log)
    const masterKey = await loadMasterKey(config, log)
    await verifyMasterKey(db, masterKey)
    const secrets = createSecretsBackend(config, { db, cluster, log, masterKey })
    if (config.billingWebhook.url && config.billingWebhook.secret) {
      const endpoint = await ensureConfigEndpoint(db, masterKey, config.billingWebhook.url, config.billingWebhook.secret)
      log.info({ endpointId: endpoint.id }, 'billing webhook endpoint configured')
    }

    if (mode !== 'api') {
      const queues = createQueues(config, redis)
      closers.push(() => queues.close())
      const workers = await startWorkers({ config, db, cluster, secrets, masterKey, log }, queues)
      closers.push(() => workers.close())
      log.info({ concurrency: config.workerConcurrency }, 'workers started')
      if (mode === 'worker' && config.metricsPort !== undefined) {
        const server = await serveWorkerMetrics(config.host, config.metricsPort)
        closers.push(() => new Promise((resolve) => server.close(resolve)))
        log.info({ port: config.metricsPort }, 'worker metrics served')
      }
    }

    if (mode !== 'worker') {
      const app = await buildApp({ config, db, redis, cluster, secrets, masterKey, log })
      await app.listen({ port: config.port, host: config.host })
      // Closed first: stop taking requests before the pools go.
      closers.push(() => app.close())
    }
  } catch (err) {
    await shutdown()
    throw err
  }
  return shutdown
}
