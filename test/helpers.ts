// Test harness: every test file gets its own control database, tenant prefix
// and queue prefix on the real Postgres and Redis, and removes them afterwards.
import { randomBytes } from 'node:crypto'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import type { FastifyInstance } from 'fastify'
import { Redis } from 'ioredis'
import pg from 'pg'
import type { Test } from 'tap'
import { buildApp } from '../src/api/app.js'
import { loadConfig, type Config } from '../src/config.js'
import { ensureAdminKey } from '../src/db/api-keys.js'
import { createDb, databaseName, withDatabase, type Db } from '../src/db/index.js'
import { migrateToLatest, ensureControlDatabase } from '../src/db/migrate.js'
import type { Tenant } from '../src/db/schema.js'
import { findTenant } from '../src/db/tenants.js'
import { startWorkers, type RunningWorkers } from '../src/jobs/index.js'
import type { WorkerDeps } from '../src/jobs/lifecycle.js'
import { createProducerConnection, createQueues, type Queues } from '../src/jobs/queues.js'
import { createLogger, type Logger } from '../src/log.js'
import { createSecretsBackend, type SecretsBackend } from '../src/secrets/index.js'
import { hardenCluster } from '../src/tenancy/cluster.js'
import { quoteIdent } from '../src/tenancy/identifiers.js'

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
export const ADMIN_KEY = 'test-admin-key-0123456789abcdefghijklmnop'
export const PG_URL = process.env.TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'
export const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'
export const auth = { authorization: `Bearer ${ADMIN_KEY}` }

export interface Harness {
  config: Config
  db: Db
  cluster: pg.Pool
  redis: Redis
  queues: Queues
  secrets: SecretsBackend
  log: Logger
  app: FastifyInstance
  /** Starts the outbox relay and every worker; stopped at teardown. */
  startWorkers(): Promise<RunningWorkers & { stop(): Promise<void> }>
  workerDeps: WorkerDeps
  /** Polls the registry until the tenant is in `state`, or fails after `ms`. */
  waitForState(ref: string, state: string, ms?: number): Promise<Tenant>
}

/** A short unique name part: test runs and files never share databases, roles or queues. */
export function uniqueId(): string {
  return randomBytes(4).toString('hex')
}

export async function setup(t: Test, env: Record<string, string> = {}, logDestination?: NodeJS.WritableStream): Promise<Harness> {
  const id = uniqueId()
  const config = loadConfig({
    DATABASE_URL: withDatabase(PG_URL, `landlord_test_${id}`),
    TENANT_CLUSTER_URL: PG_URL,
    REDIS_URL,
    TENANT_DB_PREFIX: `lt${id}_`,
    QUEUE_PREFIX: `landlord-test-${id}`,
    LANDLORD_ADMIN_KEY: ADMIN_KEY,
    TENANT_MIGRATIONS_DIR: path.join(ROOT, 'tenant-migrations'),
    LOG_LEVEL: logDestination ? 'debug' : 'silent',
    LANDLORD_MASTER_KEY: randomBytes(32).toString('base64'),
    JOB_ATTEMPTS: '3',
    JOB_BACKOFF: '50ms',
    ...env,
  })
  // One teardown, in order: workers, then pools, then the databases they used.
  const stops: Array<() => Promise<void>> = []
  // Every step runs even if one fails, and the databases and keys are always removed.
  t.teardown(async () => {
    const errors: unknown[] = []
    for (const stop of stops.reverse()) await stop().catch((err: unknown) => errors.push(err))
    await cleanupCluster(config).catch((err: unknown) => errors.push(err))
    if (errors.length > 0) throw errors[0]
  })
  await ensureControlDatabase(config.databaseUrl)
  const db = createDb(config.databaseUrl, 5)
  stops.push(() => db.destroy())
  await migrateToLatest(db)
  await ensureAdminKey(db, config.adminKey)
  const log = createLogger(config.logLevel, logDestination)
  const cluster = new pg.Pool({ connectionString: config.tenantClusterUrl, max: 4 })
  stops.push(() => cluster.end())
  // What `landlord start` does first: tenant logins reach no maintenance or control database.
  await hardenCluster(cluster, [databaseName(config.databaseUrl)])
  const redis = createProducerConnection(config)
  await redis.connect()
  stops.push(async () => {
    await cleanupRedis(redis, config.queuePrefix)
    await redis.quit()
  })
  const queues = createQueues(config, redis)
  stops.push(() => queues.close())
  const masterKey = config.masterKey!
  const secrets = createSecretsBackend(config, { db, cluster, log, masterKey })
  const app = await buildApp({ config, db, redis, cluster, secrets, masterKey, log })
  stops.push(() => app.close())
  const workerDeps: WorkerDeps = { config, db, cluster, secrets, masterKey, log }

  return {
    config,
    db,
    cluster,
    redis,
    queues,
    secrets,
    log,
    app,
    workerDeps,
    async startWorkers() {
      const workers = await startWorkers(workerDeps, queues, { relayPollMs: 200 })
      let stopped = false
      const stop = async () => {
        if (stopped) return
        stopped = true
        await workers.close()
      }
      stops.push(stop)
      return { ...workers, stop }
    },
    async waitForState(ref, state, ms = 15_000) {
      return waitFor(async () => {
        const tenant = await findTenant(db, ref)
        return tenant?.state === state ? tenant : undefined
      }, ms, () => `tenant ${ref} to reach ${state}`)
    },
  }
}

/** What POST /tenants/:id/credentials answers. */
export interface Creds {
  username: string
  password: string
  host: string
  port: number
  database: string
  expires_at: string
  lease_id: string
}

/** A session as the tenant login `c`, on its own database or on `database`. */
export async function loginAs(c: Creds, database = c.database): Promise<pg.Client> {
  const client = new pg.Client({ host: c.host, port: c.port, user: c.username, password: c.password, database })
  client.on('error', () => {}) // a session Landlord ends is expected to die
  try {
    await client.connect()
  } catch (err) {
    await client.end().catch(() => {})
    throw err
  }
  return client
}

/** Polls `check` until it returns a value, with a deadline instead of fixed sleeps. */
export async function waitFor<T>(check: () => Promise<T | undefined>, ms = 15_000, what = () => 'condition'): Promise<T> {
  const deadline = Date.now() + ms
  for (;;) {
    const value = await check()
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what()}`)
    await new Promise((r) => setTimeout(r, 25))
  }
}

export async function cleanupRedis(redis: Redis, prefix: string): Promise<void> {
  let cursor = '0'
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 500)
    cursor = next
    if (keys.length > 0) await redis.del(...keys)
  } while (cursor !== '0')
}

/** Drops the control database and every database and role with the run's tenant prefix. */
async function cleanupCluster(config: Config): Promise<void> {
  const admin = new pg.Client({ connectionString: config.tenantClusterUrl })
  await admin.connect()
  try {
    const like = `${config.tenantDbPrefix.replace(/_/g, '\\_')}%`
    const dbs = await admin.query<{ datname: string }>('SELECT datname FROM pg_database WHERE datname LIKE $1', [like])
    for (const { datname } of dbs.rows) await admin.query(`DROP DATABASE IF EXISTS ${quoteIdent(datname)} WITH (FORCE)`)
    const roles = await admin.query<{ rolname: string }>('SELECT rolname FROM pg_roles WHERE rolname LIKE $1', [like])
    for (const { rolname } of roles.rows) await admin.query(`DROP ROLE IF EXISTS ${quoteIdent(rolname)}`)
    const control = new URL(config.databaseUrl).pathname.slice(1)
    await admin.query(`DROP DATABASE IF EXISTS ${quoteIdent(control)} WITH (FORCE)`)
  } finally {
    await admin.end()
  }
}

export { Redis }
