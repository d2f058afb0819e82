// Provisioning benchmark: onboards N tenants through the HTTP API and the in-process workers,
// compares with the same SQL run serially by a bare script, and removes everything it created.
import { randomBytes } from 'node:crypto'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import pg from 'pg'
import { compose } from '../src/compose.js'
import { loadConfig, type Config } from '../src/config.js'
import { databaseName, withDatabase } from '../src/db/index.js'
import { quoteIdent } from '../src/tenancy/identifiers.js'
import { readTenantMigrations, type TenantMigration } from '../src/tenancy/migrations.js'
import { deleteKeys, dropPrefixed, percentile, seconds } from './common.js'

const { values: args } = parseArgs({ options: { n: { type: 'string' }, concurrency: { type: 'string' } } })
const N = Number(args.n ?? process.env.BENCH_N ?? 50)
if (!Number.isInteger(N) || N < 1 || N > 9999) throw new Error('--n / BENCH_N: expected an integer between 1 and 9999')
const PG_URL = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const id = randomBytes(4).toString('hex')
const ADMIN_KEY = `bench-${randomBytes(16).toString('hex')}`
const slugs = Array.from({ length: N }, (_, i) => `t${String(i + 1).padStart(4, '0')}`)

const config = loadConfig({
  DATABASE_URL: withDatabase(PG_URL, `landlord_bench_${id}`),
  TENANT_CLUSTER_URL: PG_URL,
  REDIS_URL: process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379',
  TENANT_DB_PREFIX: `lb${id}_`,
  QUEUE_PREFIX: `landlord-bench-${id}`,
  LANDLORD_ADMIN_KEY: ADMIN_KEY,
  LANDLORD_MASTER_KEY: randomBytes(32).toString('base64'),
  TENANT_MIGRATIONS_DIR: path.join(ROOT, 'tenant-migrations'),
  WORKER_CONCURRENCY: args.concurrency ?? process.env.WORKER_CONCURRENCY ?? '4',
  LOG_LEVEL: 'silent',
  // The benchmark polls as fast as it can: no rate limit may count in its figures.
  RATE_LIMIT_MAX: '1000000',
})
const BASELINE_PREFIX = `bb${id}_`

interface TenantPage {
  items: Array<{ slug: string; state: string; error: string | null }>
  next_cursor: string | null
}


/** The provisioning SQL with no control plane: one admin client, one tenant after another. */
async function runBaseline(admin: pg.Client, migrations: TenantMigration[]): Promise<number> {
  const started = performance.now()
  for (const slug of slugs) {
    const name = `${BASELINE_PREFIX}${slug}`
    await admin.query(`CREATE ROLE ${quoteIdent(name)} NOLOGIN`)
    await admin.query(`CREATE DATABASE ${quoteIdent(name)} OWNER ${quoteIdent(name)}`)
    await admin.query(`REVOKE ALL ON DATABASE ${quoteIdent(name)} FROM PUBLIC`)
    const client = new pg.Client({ connectionString: withDatabase(PG_URL, name) })
    await client.connect()
    try {
      await client.query(`SET ROLE ${quoteIdent(name)}`)
      await client.query(`CREATE TABLE IF NOT EXISTS landlord_schema_migrations (version integer PRIMARY KEY,
        name text NOT NULL, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`)
      for (const m of migrations) {
        await client.query('BEGIN')
        await client.query(m.sql)
        const insert = 'INSERT INTO landlord_schema_migrations (version, name, checksum) VALUES ($1, $2, $3)'
        await client.query(insert, [m.version, m.name, m.checksum])
        await client.query('COMMIT')
      }
    } finally {
      await client.end()
    }
  }
  return seconds(started)
}

/** Composes Landlord as `npm start` does, and listens; every opened resource is pushed to `closers`. */
async function startLandlord(cfg: Config, closers: Array<() => Promise<unknown>>): Promise<string> {
  // Keys last: once the workers are stopped and the connections closed, none is written again.
  closers.push(() => deleteKeys(cfg.redisUrl, `${cfg.queuePrefix}:*`))
  // As `npm start` runs them; a failed provisioning job leaves its tenant `failed`, which the poll reports.
  const landlord = await compose(cfg, { api: true, workers: true })
  closers.push(() => landlord.close())
  return landlord.app!.listen({ port: 0, host: '127.0.0.1' })
}

/** POSTs every tenant at once, then polls the registry until all are `active`. */
async function runLandlord(url: string): Promise<{ total: number; latencies: number[] }> {
  const headers = { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' }
  const postedAt = new Map<string, number>()
  const activeAt = new Map<string, number>()
  let postFailure: Error | undefined
  const started = performance.now()
  const posts = Promise.all(
    slugs.map(async (slug) => {
      postedAt.set(slug, performance.now())
      const res = await fetch(`${url}/tenants`, { method: 'POST', headers, body: JSON.stringify({ slug }) })
      if (res.status !== 202) throw new Error(`POST /tenants ${slug}: ${res.status} ${await res.text()}`)
    }),
  ).catch((err: unknown) => {
    postFailure = err instanceof Error ? err : new Error(String(err))
  })
  const deadline = Date.now() + 60_000 + N * 2_000
  while (activeAt.size < N) {
    if (postFailure) throw postFailure
    if (Date.now() > deadline) throw new Error(`timed out: ${activeAt.size} of ${N} tenants active`)
    let cursor: string | null = null
    do {
      const res: Response = await fetch(`${url}/tenants?limit=100${cursor === null ? '' : `&cursor=${cursor}`}`, { headers })
      if (!res.ok) throw new Error(`GET /tenants: ${res.status} ${await res.text()}`)
      const page = (await res.json()) as TenantPage
      const now = performance.now()
      for (const t of page.items) {
        if (t.state === 'failed') throw new Error(`tenant ${t.slug} failed: ${t.error ?? 'no error recorded'}`)
        if (t.state === 'active' && !activeAt.has(t.slug)) activeAt.set(t.slug, now)
      }
      cursor = page.next_cursor
    } while (cursor !== null)
    if (activeAt.size < N) await new Promise((resolve) => setTimeout(resolve, 25))
  }
  const total = seconds(started)
  await posts
  const latencies = slugs.map((s) => (activeAt.get(s) ?? NaN) - (postedAt.get(s) ?? NaN)).sort((a, b) => a - b)
  return { total, latencies }
}

async function main(): Promise<void> {
  const admin = new pg.Client({ connectionString: PG_URL, application_name: 'landlord-bench' })
  await admin.connect()
  const closers: Array<() => Promise<unknown>> = []
  try {
    const migrations = await readTenantMigrations(config.tenantMigrationsDir)
    const c = config.workerConcurrency
    console.log(`provisioning ${N} tenants, ${migrations.length} tenant migration(s), worker concurrency ${c}`)
    await admin.query('CHECKPOINT')
    const base = await runBaseline(admin, migrations)
    console.log(`baseline  serial SQL, one client   ${base.toFixed(2)} s  ${(N / base).toFixed(1)} tenants/s`)
    const url = await startLandlord(config, closers)
    await admin.query('CHECKPOINT')
    const { total, latencies } = await runLandlord(url)
    const latency = `POST→active p50 ${percentile(latencies, 50).toFixed(0)} ms, p95 ${percentile(latencies, 95).toFixed(0)} ms`
    const rate = (N / total).toFixed(1)
    console.log(`landlord  HTTP + workers (c=${c})   ${total.toFixed(2)} s  ${rate} tenants/s  ${latency}`)
    const overhead = ((total - base) * 1000) / N
    console.log(`ratio     landlord / baseline     ${(total / base).toFixed(2)}x  overhead ${overhead.toFixed(1)} ms/tenant`)
  } finally {
    // Reverse order: Landlord (the listener, then workers, queues and pools), then its Redis keys.
    for (const close of closers.reverse()) await close().catch((err: unknown) => console.error('cleanup step failed:', err))
    await dropPrefixed(admin, config.tenantDbPrefix)
    await dropPrefixed(admin, BASELINE_PREFIX)
    await admin.query(`DROP DATABASE IF EXISTS ${quoteIdent(databaseName(config.databaseUrl))} WITH (FORCE)`)
    await admin.end()
  }
}

await main()
