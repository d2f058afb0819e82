// Test harness: every test file gets its own control database (a clone of the
// run's migrated template), tenant prefix and queue prefix on the real
// Postgres and Redis, wired by compose() as a process is, and removes them
// afterwards.
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { createWriteStream } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import type { FastifyInstance } from 'fastify'
import { Redis } from 'ioredis'
import pg from 'pg'
import type { Test } from 'tap'
import { compose } from '../src/compose.js'
import { loadConfig, type Config } from '../src/config.js'
import { ensureAdminKey } from '../src/db/api-keys.js'
import { databaseName, withDatabase, type Db } from '../src/db/index.js'
import { ensureControlDatabase, migrateToLatest } from '../src/db/migrate.js'
import type { Tenant } from '../src/db/schema.js'
import { findTenant } from '../src/db/tenants.js'
import type { RunningWorkers } from '../src/jobs/index.js'
import type { WorkerDeps } from '../src/jobs/context.js'
import type { Queues } from '../src/jobs/queues.js'
import type { Logger } from '../src/log.js'
import { pollUntil } from '../src/poll.js'
import type { SecretsBackend } from '../src/secrets/index.js'
import { hardenCluster } from '../src/tenancy/cluster.js'
import { quoteIdent } from '../src/tenancy/identifiers.js'
import { PG_URL, REDIS_URL, cloneControlDatabase, names, recordId, runLogFile } from './setup-run.js'
import { startFakeVault } from './vault/fake-vault.js'

export { PG_URL, REDIS_URL }
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
export const ADMIN_KEY = 'test-admin-key-0123456789abcdefghijklmnop'
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
  /** The environment of the harness's config: a `landlord` process given it joins this instance. */
  env: Record<string, string>
  /** Polls the registry until the tenant is in `state`, or fails after `ms`. */
  waitForState(ref: string, state: string, ms?: number): Promise<Tenant>
}

/**
 * A short unique name part: test runs and files never share databases, roles
 * or queues. Recorded under the test run, whose leak check looks for its names.
 */
export function uniqueId(): string {
  const id = randomBytes(4).toString('hex')
  recordId(id)
  return id
}

/**
 * TEST_SECRETS_BACKEND=vault runs a harness on the Vault backend, against a
 * fake Vault of its own (test/vault/fake-vault.ts), unless the test chose a
 * backend itself: how a suite written for the local backend is run again on Vault.
 */
async function backendEnv(t: Test, env: Record<string, string>): Promise<Record<string, string>> {
  if (process.env.TEST_SECRETS_BACKEND !== 'vault' || env.SECRETS_BACKEND !== undefined) return {}
  const fake = await startFakeVault()
  t.teardown(() => fake.close())
  return { SECRETS_BACKEND: 'vault', VAULT_ADDR: fake.url, VAULT_ROLE_ID: fake.approle.roleId, VAULT_SECRET_ID: fake.approle.secretId }
}

export async function setup(t: Test, env: Record<string, string> = {}, logDestination?: NodeJS.WritableStream): Promise<Harness> {
  env = { ...(await backendEnv(t, env)), ...env }
  const id = uniqueId()
  const { control, tenantPrefix, queuePrefix } = names(id)
  // Without a capture of its own, a harness logs to the run's log folder: the run's end scans it for secrets.
  const logFile = logDestination ? undefined : runLogFile(id)
  const logStream = logFile ? createWriteStream(logFile, { flags: 'a' }) : undefined
  logDestination ??= logStream
  const processEnv: Record<string, string> = {
    DATABASE_URL: withDatabase(PG_URL, control),
    TENANT_CLUSTER_URL: PG_URL,
    REDIS_URL,
    TENANT_DB_PREFIX: tenantPrefix,
    QUEUE_PREFIX: queuePrefix,
    LANDLORD_ADMIN_KEY: ADMIN_KEY,
    TENANT_MIGRATIONS_DIR: path.join(ROOT, 'tenant-migrations'),
    LOG_LEVEL: logStream ? 'info' : logDestination ? 'debug' : 'silent',
    LANDLORD_MASTER_KEY: randomBytes(32).toString('base64'),
    JOB_ATTEMPTS: '3',
    JOB_BACKOFF: '50ms',
    ...env,
  }
  const config = loadConfig(processEnv)
  let close = async () => {}
  // Every step runs even if one fails, and the databases and keys are always removed.
  t.teardown(async () => {
    const errors: unknown[] = []
    await close().catch((err: unknown) => errors.push(err))
    await cleanupQueues(config).catch((err: unknown) => errors.push(err))
    await cleanupCluster(config).catch((err: unknown) => errors.push(err))
    if (logStream) await new Promise((resolve) => logStream.end(resolve))
    if (errors.length > 0) throw errors[0]
  })
  // Under tap's runner, a clone of the run's template; a file run alone migrates its own.
  const cloned = await cloneControlDatabase(control)
  if (!cloned) await ensureControlDatabase(config.databaseUrl)
  const landlord = await compose(config, {
    api: true,
    workers: false, // a test starts them when it needs them
    queues: true,
    prepare: false, // the clone is migrated, and tests register their own webhook endpoints
    logDestination,
    relayPollMs: 200,
    dbPoolSize: 5,
  })
  close = () => landlord.close()
  const { db, cluster, redis, queues, secrets, log, app, masterKey } = landlord
  if (!cloned) await migrateToLatest(db)
  await ensureAdminKey(db, config.adminKey)
  // What `landlord start` does first: tenant logins reach no maintenance or control database.
  await hardenCluster(cluster, [databaseName(config.databaseUrl)])
  return {
    config,
    db,
    cluster,
    redis,
    queues: queues!,
    secrets,
    log,
    app: app!,
    env: processEnv,
    workerDeps: { config, db, cluster, secrets, masterKey, log },
    async startWorkers() {
      const workers = await landlord.startWorkers()
      return { ...workers, stop: () => workers.close() } // close() runs once, here or at teardown
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
  const value = await pollUntil(check, { timeoutMs: ms })
  if (value === undefined) throw new Error(`timed out after ${ms} ms waiting for ${what()}`)
  return value
}

/**
 * Adds a principal with `scopes` and `grants` through the API (as the admin),
 * asserting each answer on `t`, and returns a new key of it.
 */
export async function principalWithKey(t: Test, app: FastifyInstance, name: string, scopes: string[], grants: string[] = []): Promise<string> {
  t.equal((await app.inject({ method: 'POST', url: '/principals', headers: auth, payload: { name, scopes } })).statusCode, 201, `principal ${name}`)
  for (const g of grants) t.equal((await app.inject({ method: 'PUT', url: `/principals/${name}/grants/${g}`, headers: auth })).statusCode, 200, `grant ${g}`)
  const key = await app.inject({ method: 'POST', url: `/principals/${name}/keys`, headers: auth, payload: { name: 'test' } })
  t.equal(key.statusCode, 201, `key of ${name}`)
  return key.json<{ key: string }>().key
}

export interface LandlordProcess {
  code: Promise<number | null>
  out: () => string
  err: () => string
  kill: (signal: NodeJS.Signals) => void
}

/** Runs `landlord <args>` (src/cli.ts through tsx) as a child process with exactly `env` (and PATH). */
export function spawnLandlord(args: string[], env: Record<string, string>): LandlordProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src', 'cli.ts'), ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  let err = ''
  child.stdout.on('data', (d: Buffer) => (out += d.toString()))
  child.stderr.on('data', (d: Buffer) => (err += d.toString()))
  return {
    code: new Promise((resolve) => child.on('exit', resolve)),
    out: () => out,
    err: () => err,
    kill: (signal) => child.kill(signal),
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

/** Removes the harness's queue keys, once its workers and connections are closed. */
async function cleanupQueues(config: Config): Promise<void> {
  const redis = new Redis(config.redisUrl)
  try {
    await cleanupRedis(redis, config.queuePrefix)
  } finally {
    await redis.quit()
  }
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
    await admin.query(`DROP DATABASE IF EXISTS ${quoteIdent(databaseName(config.databaseUrl))} WITH (FORCE)`)
  } finally {
    await admin.end()
  }
}

export { Redis }
