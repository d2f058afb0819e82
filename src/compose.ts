// Builds Landlord's pieces from a config, in dependency order, and closes them
// in the reverse one. Processes (main.ts), the test harness, the benchmark and
// the OpenAPI script all compose Landlord here, so they run the same wiring.
import type { FastifyInstance } from 'fastify'
import type { Redis } from 'ioredis'
import pg from 'pg'
import type { DestinationStream } from 'pino'
import { buildApp } from './api/app.js'
import type { Config } from './config.js'
import { ensureAdminKey } from './db/api-keys.js'
import { tenantsPerVersion } from './db/fleet.js'
import { createDb, databaseName, redactUrl, type Db } from './db/index.js'
import { ensureControlDatabase, migrateToLatest } from './db/migrate.js'
import { startWorkers, type RunningWorkers } from './jobs/index.js'
import { createProducerConnection, createQueues, type Queues } from './jobs/queues.js'
import { createLogger, type Logger } from './log.js'
import { trackSchemaVersions } from './metrics.js'
import { createSecretsBackend, type SecretsBackend } from './secrets/index.js'
import { loadMasterKey, verifyMasterKey } from './secrets/master-key.js'
import { hardenCluster, openClusterPool } from './tenancy/cluster.js'
import { ensureConfigEndpoint } from './webhooks/endpoints.js'

export interface ComposeOptions {
  /** Build the Fastify app (default true). It does not listen: the caller does. */
  api?: boolean
  /** Start the outbox relay and the workers (default true); `startWorkers()` starts more later. */
  workers?: boolean
  /** Build the BullMQ queues even without workers (implied by `workers`): tests start workers when they need them. */
  queues?: boolean
  /**
   * Do what a process does before it serves (default true unless `offline`):
   * create and migrate the control database, make an admin key when none is
   * stored, check the tenant cluster and close it to tenant logins, verify the
   * master key and register BILLING_WEBHOOK_URL. The test harness clones a
   * migrated database instead, and its tests register their own endpoints.
   */
  prepare?: boolean
  /**
   * Reach no server (default false): nothing is migrated, checked or connected.
   * pg.Pool and the lazy Redis connection open only when used, and building the
   * app uses neither, so the app can be built for its OpenAPI document alone.
   */
  offline?: boolean
  /** Given the admin key `prepare` generated, to be shown once: it is never logged. */
  onAdminKeyGenerated?: (key: string) => void
  /** Where logs go (default stdout). */
  logDestination?: DestinationStream
  /** How often the outbox relay polls besides its notifications (default: the relay's). */
  relayPollMs?: number
  /** Size of the control-database pool (default: createDb's). */
  dbPoolSize?: number
}

export interface Landlord {
  config: Config
  log: Logger
  db: Db
  /** Admin pool on the tenant cluster. */
  cluster: pg.Pool
  /** The fail-fast producer connection (readiness, queues). */
  redis: Redis
  masterKey: Buffer
  secrets: SecretsBackend
  /** Built with `workers` or `queues`. */
  queues: Queues | undefined
  /** Built with `api`. */
  app: FastifyInstance | undefined
  /** The relay and workers `workers` started. */
  workers: RunningWorkers | undefined
  /** Starts another set of the relay and workers (a second worker process, in tests); closed by close(). */
  startWorkers(): Promise<RunningWorkers>
  /**
   * Stops taking requests, then lets workers finish their jobs, then closes
   * the queues and pools. Every step runs; each failure is logged, and the
   * first is thrown once all have run.
   */
  close(): Promise<void>
}

/** A dependency that cannot be reached at start: one line, naming what and how to fix it. */
export class UnreachableError extends Error {}

function unreachable(what: string, variable: string, url: string, err: unknown, service: string): UnreachableError {
  const reason = (err as { code?: string }).code ?? (err as Error).message
  return new UnreachableError(
    `cannot reach ${what} at ${redactUrl(url)} (${variable}): ${reason}. ` +
      `Start it with \`docker compose up -d ${service}\` or the local service, or point ${variable} at it.`,
  )
}

/** Creates the control database when missing and migrates it to the latest version. */
export async function prepareControlPlane(config: Config, db: Db, log: Logger): Promise<void> {
  try {
    if (await ensureControlDatabase(config.databaseUrl)) log.info('control-plane database created')
  } catch (err) {
    throw unreachable('PostgreSQL', 'DATABASE_URL', config.databaseUrl, err, 'postgres')
  }
  const result = await migrateToLatest(db)
  for (const r of result.results ?? []) log.info({ migration: r.migrationName }, 'control-plane migration applied')
}

async function connectRedis(config: Config, redis: Redis): Promise<void> {
  try {
    await redis.connect()
    await redis.ping()
  } catch (err) {
    throw unreachable('Redis', 'REDIS_URL', config.redisUrl, err, 'redis')
  }
}

async function checkCluster(config: Config, cluster: pg.Pool): Promise<void> {
  try {
    await cluster.query('SELECT 1')
  } catch (err) {
    throw unreachable('the tenant cluster', 'TENANT_CLUSTER_URL', config.tenantClusterUrl, err, 'postgres')
  }
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

/** `quit()` needs a live connection; a lazy or broken one is dropped instead. */
async function closeRedis(redis: Redis): Promise<void> {
  if (redis.status === 'ready') await redis.quit()
  else redis.disconnect()
}

export async function compose(config: Config, opts: ComposeOptions = {}): Promise<Landlord> {
  const { api = true, workers = true, offline = false } = opts
  const prepare = opts.prepare ?? !offline
  const wantQueues = workers || (opts.queues ?? false)
  if (offline && (prepare || wantQueues)) throw new Error('compose: offline builds neither queues nor workers, and prepares nothing')

  const log = createLogger(config.logLevel, opts.logDestination)
  const db = createDb(config.databaseUrl, opts.dbPoolSize)
  const redis = createProducerConnection(config)
  redis.on('error', () => {}) // reported through readiness and job errors, not once per reconnect
  const cluster = openClusterPool(config.tenantClusterUrl)
  let queues: Queues | undefined
  let app: FastifyInstance | undefined
  const workerSets: RunningWorkers[] = []
  let secretsBackend: SecretsBackend | undefined

  let closing: Promise<void> | undefined
  const close = () => (closing ??= closeAll())
  async function closeAll(): Promise<void> {
    // Requests first, then the work in flight, then what both stand on.
    const steps: Array<() => Promise<unknown>> = [
      async () => app?.close(),
      ...[...workerSets].reverse().map((set) => () => set.close()),
      async () => queues?.close(),
      async () => secretsBackend?.close?.(),
      () => cluster.end(),
      () => closeRedis(redis),
      () => db.destroy(),
    ]
    const errors: unknown[] = []
    for (const step of steps) {
      await step().catch((err: unknown) => {
        log.error({ err }, 'shutdown step failed')
        errors.push(err)
      })
    }
    if (errors.length > 0) throw errors[0]
  }

  try {
    if (prepare) {
      await prepareControlPlane(config, db, log)
      const generated = await ensureAdminKey(db, config.adminKey)
      if (generated) opts.onAdminKeyGenerated?.(generated)
    }
    if (!offline) await connectRedis(config, redis)
    if (prepare) {
      // Both sides need the cluster: workers apply effects, the API issues credentials.
      await checkCluster(config, cluster)
      await hardenTenantCluster(config, cluster, log)
    }
    const masterKey = await loadMasterKey(config, log)
    if (prepare) await verifyMasterKey(db, masterKey)
    const secrets = createSecretsBackend(config, { db, cluster, log, masterKey })
    secretsBackend = secrets
    if (!offline) await secrets.start?.()
    if (prepare && config.billingWebhook.url && config.billingWebhook.secret) {
      const endpoint = await ensureConfigEndpoint(db, masterKey, config.billingWebhook.url, config.billingWebhook.secret)
      log.info({ endpointId: endpoint.id }, 'billing webhook endpoint configured')
    }
    if (wantQueues) queues = createQueues(config, redis)

    const startWorkerSet = async (): Promise<RunningWorkers> => {
      if (!queues) throw new Error('compose: startWorkers() needs the queues (`workers` or `queues`)')
      const running = await startWorkers({ config, db, cluster, secrets, masterKey, log }, queues, { relayPollMs: opts.relayPollMs })
      // Closed by the caller or by close(), whichever comes first, but once.
      let closed: Promise<void> | undefined
      const set: RunningWorkers = { ...running, close: () => (closed ??= running.close()) }
      workerSets.push(set)
      return set
    }
    const firstWorkers = workers ? await startWorkerSet() : undefined
    if (api) app = await buildApp({ config, db, redis, cluster, secrets, masterKey, log })
    if (!offline) trackSchemaVersions(() => tenantsPerVersion(db))

    return {
      config,
      log,
      db,
      cluster,
      redis,
      masterKey,
      secrets,
      queues,
      app,
      workers: firstWorkers,
      startWorkers: startWorkerSet,
      close,
    }
  } catch (err) {
    await close().catch(() => {}) // each failure is logged; the cause of the failed start is what matters
    throw err
  }
}
