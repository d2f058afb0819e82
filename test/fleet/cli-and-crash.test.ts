// `landlord migrate-fleet` as an operator runs it; a worker killed with
// SIGKILL in the middle of a tenant's migration: the run resumes on another
// worker and no migration is applied twice; jobs lost with Redis are found
// again by the maintenance sweep.
import { writeFile } from 'node:fs/promises'
import path from 'node:path'
import t from 'tap'
import { resumeFleet } from '../../src/jobs/maintenance.js'
import { OutboxRelay } from '../../src/jobs/relay.js'
import { auth, setup, spawnLandlord, waitFor, type Harness } from '../helpers.js'
import { migrationsDir, onTenantDb } from './fixtures.js'

async function onboard(h: Harness, slugs: string[]): Promise<void> {
  const workers = await h.startWorkers()
  for (const slug of slugs) t.equal((await h.app.inject({ method: 'POST', url: '/tenants', headers: auth, payload: { slug } })).statusCode, 202)
  for (const slug of slugs) await h.waitForState(slug, 'active')
  await workers.stop()
}

t.test('landlord migrate-fleet shows a summary and exits 1 when a tenant failed', async (t) => {
  const dir = await migrationsDir(t)
  const h = await setup(t, { TENANT_MIGRATIONS_DIR: dir })
  await onboard(h, ['alpha', 'bravo', 'charlie'])
  await onTenantDb(h.config, 'charlie', (c) => c.query('CREATE TABLE invoices (legacy int)'))
  await writeFile(path.join(dir, '0002_invoices.sql'), 'CREATE TABLE invoices (id bigint PRIMARY KEY);\n')
  const env = { ...h.env, LOG_LEVEL: 'silent' }

  const dry = spawnLandlord(['migrate-fleet', '--dry-run', '--tenants', 'alpha,bravo', '--json'], env)
  t.equal(await dry.code, 0, dry.err())
  t.match(JSON.parse(dry.out()), { status: 'completed', dry_run: true, succeeded: 2, failed: 0 })
  t.equal((await h.db.selectFrom('tenants').select('schema_version').where('slug', '=', 'alpha').executeTakeFirstOrThrow()).schema_version, 1)

  const run = spawnLandlord(['migrate-fleet', '--concurrency', '2'], env)
  t.equal(await run.code, 1, run.err())
  t.match(run.out(), /: completed_with_errors, target version 2/)
  t.match(run.out(), /succeeded\s+2\n/)
  t.match(run.out(), /failed\s+1\n/)
  t.match(run.out(), /charlie\s+2\s+migration 2_invoices failed: relation "invoices" already exists/)
  const versions = await h.db.selectFrom('tenants').select(['slug', 'schema_version']).orderBy('slug').execute()
  t.same(versions, [
    { slug: 'alpha', schema_version: 2 },
    { slug: 'bravo', schema_version: 2 },
    { slug: 'charlie', schema_version: 1 },
  ])

  const bad = spawnLandlord(['migrate-fleet', '--concurrency', 'lots'], env)
  t.equal(await bad.code, 2)
  t.match(bad.err(), /--concurrency: expected an integer/)
})

t.test('a worker killed mid-migration: the run resumes elsewhere and applies nothing twice', async (t) => {
  const dir = await migrationsDir(t)
  const h = await setup(t, { TENANT_MIGRATIONS_DIR: dir, JOB_LOCK_TIMEOUT: '1s' })
  const slugs = ['alpha', 'bravo', 'charlie']
  await onboard(h, slugs)
  // Not idempotent on purpose: a second application would log a second row.
  await writeFile(
    path.join(dir, '0002_slow.sql'),
    'CREATE TABLE applied_log (at timestamptz NOT NULL DEFAULT now());\nINSERT INTO applied_log DEFAULT VALUES;\nSELECT pg_sleep(1.5);\n',
  )
  const worker = spawnLandlord(['worker'], { ...h.env, JOB_LOCK_TIMEOUT: '1s', LOG_LEVEL: 'silent' })
  t.teardown(async () => {
    worker.kill('SIGKILL')
    await worker.code
  })
  const res = await h.app.inject({ method: 'POST', url: '/fleet-migrations', headers: auth, payload: { concurrency: 1 } })
  t.equal(res.statusCode, 202)
  const runId = res.json<{ id: string }>().id

  // Killed while a tenant's migration sleeps inside its transaction.
  const victim = await waitFor(async () => {
    const item = await h.db.selectFrom('fleet_migration_tenants').selectAll().where('run_id', '=', runId).where('status', '=', 'running').executeTakeFirst()
    return item?.started_at && Date.now() - item.started_at.getTime() > 300 ? item : undefined
  }, 30_000, () => 'a tenant migrating in the worker process')
  worker.kill('SIGKILL')
  t.equal(await worker.code, null, 'killed, no clean exit')

  await h.startWorkers()
  const run = await waitFor(async () => {
    const r = (await h.app.inject({ method: 'GET', url: `/fleet-migrations/${runId}`, headers: auth })).json<{ finished_at: string | null; status: string; succeeded: number }>()
    return r.finished_at ? r : undefined
  }, 60_000, () => 'the run to finish')
  t.match(run, { status: 'completed', succeeded: 3 })
  for (const slug of slugs) {
    const rows = await onTenantDb(h.config, slug, (c) => c.query('SELECT count(*)::int AS n FROM applied_log'))
    t.equal(rows.rows[0].n, 1, `${slug}: the migration ran once`)
  }
  const item = await h.db.selectFrom('fleet_migration_tenants').selectAll().where('run_id', '=', runId).where('tenant_id', '=', victim.tenant_id).executeTakeFirstOrThrow()
  t.match(item, { status: 'succeeded', to_version: 2 })
  t.ok(item.attempts >= 2, 'taken over from the killed worker')
})

t.test('jobs lost with Redis are queued again by the fleet-resume sweep, and the run ends', async (t) => {
  const dir = await migrationsDir(t)
  const h = await setup(t, { TENANT_MIGRATIONS_DIR: dir })
  await onboard(h, ['alpha', 'bravo'])
  await writeFile(path.join(dir, '0002_notes.sql'), 'CREATE TABLE notes (id bigint PRIMARY KEY);\n')
  const res = await h.app.inject({ method: 'POST', url: '/fleet-migrations', headers: auth, payload: {} })
  const runId = res.json<{ id: string }>().id
  t.equal(await new OutboxRelay({ db: h.db, databaseUrl: h.config.databaseUrl, queues: h.queues, log: h.log }).drain(), 2, 'both jobs reach BullMQ')
  await h.queues.fleet.obliterate({ force: true }) // Redis lost them
  t.equal(await resumeFleet(h.workerDeps, h.queues), 2, 'both tenants queued again')
  t.equal(await resumeFleet(h.workerDeps, h.queues), 0, 'once: their new jobs wait for the relay')
  await h.startWorkers()
  const run = await waitFor(async () => {
    const r = (await h.app.inject({ method: 'GET', url: `/fleet-migrations/${runId}`, headers: auth })).json<{ finished_at: string | null; status: string; succeeded: number }>()
    return r.finished_at ? r : undefined
  }, 30_000, () => 'the run to finish')
  t.match(run, { status: 'completed', succeeded: 2 })
})
