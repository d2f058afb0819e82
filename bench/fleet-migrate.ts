// Fleet migration benchmark: onboards N tenants (not timed), then applies one
// new tenant migration to every tenant database twice over, each time timed:
//  - baseline: a serial loop running `psql -1 -f <file>` once per database,
//    as a shell script would;
//  - landlord: POST /fleet-migrations, until GET /fleet-migrations/:id says it is over.
// Then a run with nothing to do over the fleet plus M registry-only tenants.
// Everything it made is removed at the end, even on error.
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs, promisify } from 'node:util'
import { sql } from 'kysely'
import pg from 'pg'
import { compose } from '../src/compose.js'
import { loadConfig } from '../src/config.js'
import { databaseName, withDatabase } from '../src/db/index.js'
import { quoteIdent } from '../src/tenancy/identifiers.js'
import { deleteKeys, dropPrefixed, seconds } from './common.js'

const run = promisify(execFile)
const { values: args } = parseArgs({ options: { n: { type: 'string' }, concurrency: { type: 'string' }, noop: { type: 'string' } } })
const N = Number(args.n ?? process.env.BENCH_N ?? 200)
const NOOP = Number(args.noop ?? 1000)
const CONCURRENCY = args.concurrency ?? '16'
if (!Number.isInteger(N) || N < 1 || N > 9999) throw new Error('--n / BENCH_N: expected an integer between 1 and 9999')
const PG_URL = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const id = randomBytes(4).toString('hex')
const ADMIN_KEY = `bench-${randomBytes(16).toString('hex')}`
const headers = { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' }

/** A typical additive change: a table with a foreign key and an index, and a new column. */
const migration = (suffix: string) => `
CREATE TABLE invoices${suffix} (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  project_id bigint NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
  amount_cents bigint NOT NULL CHECK (amount_cents >= 0),
  issued_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX invoices${suffix}_project ON invoices${suffix} (project_id);
ALTER TABLE users ADD COLUMN locale${suffix} text;
`

async function api<T>(url: string, method: string, body?: object): Promise<T> {
  const res = await fetch(url, { method, headers, ...(body ? { body: JSON.stringify(body) } : {}) })
  if (!res.ok) throw new Error(`${method} ${url}: ${res.status} ${await res.text()}`)
  return (await res.json()) as T
}

interface Run {
  id: string
  status: string
  total: number
  succeeded: number
  failed: number
  skipped: number
  finished_at: string | null
}

/** Waits for the run's end by reading its row every 20 ms (cheaper than the API, which would compete for the CPU), then reads it through the API. */
async function finished(admin: pg.Client, url: string, runId: string): Promise<Run> {
  for (;;) {
    const { rows } = await admin.query<{ finished_at: Date | null }>(`SELECT finished_at FROM fleet_migrations WHERE id = $1`, [runId])
    if (rows[0]?.finished_at) return api<Run>(`${url}/fleet-migrations/${runId}`, 'GET')
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

/** CPU time the host spent busy so far, in ms (Linux /proc/stat; 0 elsewhere). */
async function hostCpu(): Promise<number> {
  const stat = await readFile('/proc/stat', 'utf8').catch(() => '')
  const fields = stat.split('\n')[0]?.trim().split(/\s+/).slice(1).map(Number) ?? []
  if (fields.length < 5) return 0
  const idle = (fields[3] ?? 0) + (fields[4] ?? 0)
  const total = fields.reduce((a, b) => a + b, 0)
  return ((total - idle) * 1000) / 100 // USER_HZ is 100 on Linux
}

async function main(): Promise<void> {
  const dir = await mkdtemp(path.join(tmpdir(), 'landlord-bench-fleet-'))
  await cp(path.join(ROOT, 'tenant-migrations'), dir, { recursive: true })
  const config = loadConfig({
    DATABASE_URL: withDatabase(PG_URL, `landlord_bench_${id}`),
    TENANT_CLUSTER_URL: PG_URL,
    REDIS_URL: process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379',
    TENANT_DB_PREFIX: `lf${id}_`,
    QUEUE_PREFIX: `landlord-bench-${id}`,
    LANDLORD_ADMIN_KEY: ADMIN_KEY,
    LANDLORD_MASTER_KEY: randomBytes(32).toString('base64'),
    TENANT_MIGRATIONS_DIR: dir,
    FLEET_MIGRATION_CONCURRENCY: CONCURRENCY,
    LOG_LEVEL: 'silent',
    // The benchmark polls as fast as it can: no rate limit may count in its figures.
    RATE_LIMIT_MAX: '1000000',
  })
  const admin = new pg.Client({ connectionString: PG_URL, application_name: 'landlord-bench' })
  await admin.connect()
  const closers: Array<() => Promise<unknown>> = [() => deleteKeys(config.redisUrl, `${config.queuePrefix}:*`)]
  try {
    const landlord = await compose(config, { api: true, workers: true })
    closers.push(() => landlord.close())
    const url = await landlord.app!.listen({ port: 0, host: '127.0.0.1' })
    const control = new pg.Client({ connectionString: config.databaseUrl, application_name: 'landlord-bench' })
    await control.connect()
    closers.push(() => control.end())
    const slugs = Array.from({ length: N }, (_, i) => `t${String(i + 1).padStart(4, '0')}`)
    console.log(`onboarding ${N} tenants (not timed)`)
    await Promise.all(slugs.map((slug) => api(`${url}/tenants`, 'POST', { slug })))
    for (;;) {
      const r = await landlord.db.selectFrom('tenants').select((eb) => eb.fn.countAll<string>().as('n')).where('state', '=', 'active').executeTakeFirstOrThrow()
      if (Number(r.n) === N) break
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    const databases = slugs.map((s) => `${config.tenantDbPrefix}${s}`)

    const file = path.join(dir, 'baseline.sql.txt')
    await writeFile(file, migration('_b'))
    await admin.query('CHECKPOINT')
    let started = performance.now()
    for (const db of databases) await run('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-1', '-d', withDatabase(PG_URL, db), '-f', file])
    const base = seconds(started)
    console.log(`baseline  serial psql loop, ${N} databases      ${base.toFixed(2)} s  ${(N / base).toFixed(1)} tenants/s`)

    await writeFile(path.join(dir, '0002_invoices.sql'), migration(''))
    await admin.query('CHECKPOINT')
    const cpu0 = process.cpuUsage()
    const host0 = await hostCpu()
    started = performance.now()
    const { id: runId } = await api<Run>(`${url}/fleet-migrations`, 'POST', {})
    const result = await finished(control, url, runId)
    const fleet = seconds(started)
    const cpu = process.cpuUsage(cpu0)
    const host = (await hostCpu()) - host0
    const nodeMs = (cpu.user + cpu.system) / 1000
    if (result.succeeded !== N) throw new Error(`fleet migration: ${JSON.stringify(result)}`)
    const speedup = base / fleet
    console.log(`landlord  POST /fleet-migrations (c=${CONCURRENCY})    ${fleet.toFixed(2)} s  ${(N / fleet).toFixed(1)} tenants/s`)
    console.log(`          CPU per tenant: ${(host / N).toFixed(1)} ms on the host, ${(nodeMs / N).toFixed(1)} ms of it in Landlord's process`)
    console.log(`speedup   baseline / landlord                  ${speedup.toFixed(2)}x  (target ≥ 5x: ${speedup >= 5 ? 'met' : 'MISSED'})`)

    // Registry-only tenants at the head version: their databases do not exist, so a connection would fail.
    const missing = `${config.tenantDbPrefix}missing_`
    await sql`
      INSERT INTO tenants (slug, database_name, owner_role, state, snapshot, schema_version)
      SELECT 'n' || lpad(g::text, 5, '0'), ${missing} || g, ${missing} || g, 'active', (SELECT snapshot FROM tenants LIMIT 1), 2
        FROM generate_series(1, ${NOOP}::int) AS g`.execute(landlord.db)
    started = performance.now()
    const noop = await api<Run>(`${url}/fleet-migrations`, 'POST', {})
    const noopTime = seconds(started)
    if (!noop.finished_at || noop.skipped !== N + NOOP) throw new Error(`no-op run: ${JSON.stringify(noop)}`)
    console.log(`no-op     ${N + NOOP} tenants at the target, one POST  ${(noopTime * 1000).toFixed(0)} ms  (target < 1000 ms: ${noopTime < 1 ? 'met' : 'MISSED'})`)
  } finally {
    for (const close of closers.reverse()) await close().catch((err: unknown) => console.error('cleanup step failed:', err))
    await dropPrefixed(admin, config.tenantDbPrefix)
    await admin.query(`DROP DATABASE IF EXISTS ${quoteIdent(databaseName(config.databaseUrl))} WITH (FORCE)`)
    await admin.end()
    await rm(dir, { recursive: true, force: true })
  }
}

await main()
