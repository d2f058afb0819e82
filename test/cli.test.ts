// The `landlord` command as operators run it: a real process, real listener.
import { createServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import path from 'node:path'
import pg from 'pg'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import t, { type Test } from 'tap'
import { withDatabase } from '../src/db/index.js'
import { quoteIdent } from '../src/tenancy/identifiers.js'
import { ADMIN_KEY, PG_URL, REDIS_URL, Redis, auth, cleanupRedis, setup, spawnLandlord, uniqueId, waitFor, type LandlordProcess } from './helpers.js'
import { startFakeVault } from './vault/fake-vault.js'
import { names } from './setup-run.js'

type Run = LandlordProcess

/** A port nobody listens on right now. */
async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  await new Promise((resolve) => server.close(resolve))
  return port
}

/**
 * Runs `landlord <args>` as an isolated instance: its own control database,
 * tenant prefix, queue prefix and LANDLORD_HOME. At teardown the process is
 * killed and waited for, then everything it made is removed.
 */
async function spawnIsolated(t: Test, args: string[], env: Record<string, string> = {}): Promise<Run> {
  const { control, tenantPrefix, queuePrefix } = names(uniqueId())
  const home = await mkdtemp(path.join(tmpdir(), 'landlord-home-'))
  const run = landlord(args, {
    DATABASE_URL: withDatabase(PG_URL, control),
    TENANT_CLUSTER_URL: PG_URL,
    REDIS_URL,
    TENANT_DB_PREFIX: tenantPrefix,
    QUEUE_PREFIX: queuePrefix,
    LANDLORD_HOME: home,
    LOG_LEVEL: 'warn',
    ...env,
  })
  t.teardown(async () => {
    run.kill('SIGKILL')
    await run.code
    await dropDatabases(tenantPrefix, queuePrefix, control)
    await rm(home, { recursive: true, force: true })
  })
  return run
}

const landlord = spawnLandlord

/** Removes what a spawned instance left: its databases, roles and queue keys. */
async function dropDatabases(prefix: string, queuePrefix: string, control: string) {
  const redis = new Redis(REDIS_URL)
  await cleanupRedis(redis, queuePrefix)
  await redis.quit()
  const admin = new pg.Client({ connectionString: PG_URL })
  await admin.connect()
  const dbs = await admin.query<{ datname: string }>('SELECT datname FROM pg_database WHERE datname LIKE $1', [`${prefix}%`])
  for (const { datname } of [...dbs.rows, { datname: control }]) {
    await admin.query(`DROP DATABASE IF EXISTS ${quoteIdent(datname)} WITH (FORCE)`)
  }
  const roles = await admin.query<{ rolname: string }>('SELECT rolname FROM pg_roles WHERE rolname LIKE $1', [`${prefix}%`])
  for (const { rolname } of roles.rows) await admin.query(`DROP ROLE IF EXISTS ${quoteIdent(rolname)}`)
  await admin.end()
}

t.test('an unreachable Postgres fails start with one line naming the URL and the fix', async (t) => {
  const run = landlord(['start'], { DATABASE_URL: 'postgres://postgres:hunter2@127.0.0.1:1/landlord' })
  t.equal(await run.code, 1)
  const lines = run.err().trim().split('\n')
  t.equal(lines.length, 1, run.err())
  t.match(lines[0], /cannot reach PostgreSQL at postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:1\/landlord \(DATABASE_URL\): ECONNREFUSED/)
  t.match(lines[0], /docker compose up -d postgres/)
  t.notMatch(run.err(), /hunter2/, 'the password is not printed')
})

t.test('an unreachable Redis fails start with one line naming the URL', async (t) => {
  const run = await spawnIsolated(t, ['start'], { REDIS_URL: 'redis://127.0.0.1:1', LANDLORD_ADMIN_KEY: ADMIN_KEY, LOG_LEVEL: 'silent' })
  t.equal(await run.code, 1)
  t.match(run.err().trim(), /^landlord: cannot reach Redis at redis:\/\/127\.0\.0\.1:1 \(REDIS_URL\): .*docker compose up -d redis/)
  t.equal(run.err().trim().split('\n').length, 1)
})

t.test('bad configuration fails start with one line naming the variable', async (t) => {
  const run = landlord(['start'], { TENANT_DB_PREFIX: 'Bad-Prefix' })
  t.equal(await run.code, 1)
  t.match(run.err(), /^landlord: invalid configuration: TENANT_DB_PREFIX: /)
})

t.test('start: creates the control database, serves the API, onboards a tenant, stops cleanly on SIGTERM', async (t) => {
  const port = await freePort()
  const run = await spawnIsolated(t, ['start'], { PORT: String(port) })
  const base = `http://127.0.0.1:${port}`
  await waitFor(
    () => fetch(`${base}/readyz`).then((r) => (r.ok ? true : undefined), () => undefined),
    20_000,
    () => `readiness; stderr: ${run.err()}`,
  )
  // No key was configured: one was generated and printed once.
  const key = /\n {2}(landlord_\S+)\n/.exec(run.out())?.[1]
  t.ok(key, 'the generated admin key is printed')
  const headers = { authorization: `Bearer ${key}`, 'content-type': 'application/json' }
  const created = await fetch(`${base}/tenants`, { method: 'POST', headers, body: JSON.stringify({ slug: 'acme' }) })
  t.equal(created.status, 202)
  const status = await waitFor(async () => {
    const s = (await (await fetch(`${base}/tenants/acme/status`, { headers })).json()) as { state: string }
    return s.state === 'active' ? s : undefined
  })
  t.match(status, { state: 'active', schema_version: 1 })
  run.kill('SIGTERM')
  t.equal(await run.code, 0, 'exits 0 after a graceful shutdown')
  t.notMatch(run.err(), /"level":(50|60)/, 'no error was logged')
})

t.test('worker: with METRICS_PORT, a worker serves its metrics and health, and stops cleanly on SIGINT', async (t) => {
  const port = await freePort()
  const run = await spawnIsolated(t, ['worker'], {
    METRICS_PORT: String(port),
    LANDLORD_ADMIN_KEY: ADMIN_KEY,
    LANDLORD_MASTER_KEY: Buffer.alloc(32, 1).toString('base64'),
  })
  const metrics = await waitFor(
    () => fetch(`http://127.0.0.1:${port}/metrics`).then((r) => (r.ok ? r.text() : undefined), () => undefined),
    20_000,
    () => `worker metrics; stderr: ${run.err()}`,
  )
  t.match(metrics, /# HELP landlord_lifecycle_jobs_total/)
  t.match(metrics, /# HELP landlord_webhook_attempts_total/)
  t.equal((await fetch(`http://127.0.0.1:${port}/healthz`)).status, 200)
  t.equal((await fetch(`http://127.0.0.1:${port}/tenants`)).status, 404, 'no API on a worker')
  run.kill('SIGINT')
  t.equal(await run.code, 0)
  t.match(run.err(), /landlord: SIGINT received, shutting down/)
})

t.test('secrets migrate --to vault: moves local tenants to Vault, prints progress, and is idempotent', async (t) => {
  const h = await setup(t)
  await h.startWorkers()
  await h.app.inject({ method: 'POST', url: '/tenants', headers: auth, payload: { slug: 'moving' } })
  await h.waitForState('moving', 'active')
  const fake = await startFakeVault()
  t.teardown(() => fake.close())
  const env = {
    DATABASE_URL: h.config.databaseUrl,
    TENANT_CLUSTER_URL: h.config.tenantClusterUrl,
    REDIS_URL,
    TENANT_DB_PREFIX: h.config.tenantDbPrefix,
    QUEUE_PREFIX: h.config.queuePrefix,
    LANDLORD_MASTER_KEY: h.workerDeps.masterKey.toString('base64'),
    LANDLORD_ADMIN_KEY: ADMIN_KEY,
    LOG_LEVEL: 'silent',
    SECRETS_BACKEND: 'vault',
    VAULT_ADDR: fake.url,
    VAULT_ROLE_ID: fake.approle.roleId,
    VAULT_SECRET_ID: fake.approle.secretId,
  }
  const first = landlord(['secrets', 'migrate', '--to', 'vault'], env)
  t.equal(await first.code, 0, first.err())
  t.match(first.err(), /\[#+\s*\] 1\/1 moving/, 'a progress bar')
  t.match(first.out(), /tenants: 1 {2}moved: 1 {2}already in Vault: 0/)
  const again = landlord(['secrets', 'migrate', '--to', 'vault', '--json'], env)
  t.equal(await again.code, 0, again.err())
  t.same(JSON.parse(again.out()), { total: 1, moved: 0, already: 1, withoutKey: 0 }, 'a second run changes nothing')
  const local = landlord(['secrets', 'migrate', '--to', 'vault'], { ...env, SECRETS_BACKEND: 'local' })
  t.equal(await local.code, 1)
  t.match(local.err().trim(), /^landlord: invalid configuration: SECRETS_BACKEND: must be "vault"/)
  t.notOk(local.err().includes(fake.approle.secretId))
})
