// Fleet migrations through HTTP down to every tenant database: one tenant made
// to fail fails alone and is listed, a dry run changes nothing, a failed
// canary stops the run before the rest, a suspended tenant is migrated before
// it reports active again, tenants created during a run are born at the head,
// a tenant that keeps failing is quarantined, and fixing it and retrying
// completes the run.
import { writeFile } from 'node:fs/promises'
import path from 'node:path'
import type pg from 'pg'
import t from 'tap'
import { auth, setup, waitFor } from '../helpers.js'
import { appliedVersions, hasTable as hasTableOf, migrationsDir, onTenantDb as onTenantDbOf } from './fixtures.js'
import { startReceiver } from '../webhooks/receiver.js'

t.test('fleet migrations', async (t) => {
  const dir = await migrationsDir(t)
  const h = await setup(t, { TENANT_MIGRATIONS_DIR: dir, FLEET_QUARANTINE_AFTER: '2', FLEET_MIGRATION_CONCURRENCY: '2', WEBHOOK_ALLOWED_NETWORKS: '127.0.0.0/8' })
  const { app, db } = h
  // Billing, subscribed to fleet migrations only.
  const receiver = await startReceiver()
  t.teardown(() => receiver.close())
  const endpoint = await app.inject({ method: 'POST', url: '/webhook-endpoints', headers: auth, payload: { url: receiver.url('/billing'), event_types: ['fleet_migration.completed'] } })
  receiver.trust('/billing', endpoint.json<{ secret: string }>().secret)
  const SLUGS = ['alpha', 'bravo', 'charlie', 'delta', 'echo']

  const call = async (method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, payload?: object) =>
    app.inject({ method, url, headers: auth, ...(payload ? { payload } : {}) })

  const onTenantDb = <T>(slug: string, fn: (c: pg.Client) => Promise<T>) => onTenantDbOf(h.config, slug, fn)
  const hasTable = (slug: string, table: string) => hasTableOf(h.config, slug, table)
  const applied = (slug: string) => appliedVersions(h.config, slug)
  const registry = async (slug: string) => db.selectFrom('tenants').selectAll().where('slug', '=', slug).executeTakeFirstOrThrow()

  interface Run {
    id: string
    status: string
    total: number
    succeeded: number
    failed: number
    skipped: number
    deferred: number
    pending: number
    finished_at: string | null
    stop_reason: string | null
    failures: Array<{ tenant: string; version: number | null; error: string }>
  }

  async function start(body: object): Promise<Run> {
    const res = await call('POST', '/fleet-migrations', body)
    t.equal(res.statusCode, 202, res.body)
    return res.json()
  }

  async function finished(id: string): Promise<Run> {
    return waitFor(async () => {
      const run = (await call('GET', `/fleet-migrations/${id}`)).json<Run>()
      return run.finished_at ? run : undefined
    }, 30_000, () => `fleet migration ${id} to finish`)
  }

  for (const slug of SLUGS) t.equal((await call('POST', '/tenants', { slug })).statusCode, 202)
  let workers = await h.startWorkers()
  for (const slug of SLUGS) await h.waitForState(slug, 'active')
  // delta holds a table of the name the next migration creates: that migration fails there, and only there.
  await onTenantDb('delta', (c) => c.query('CREATE TABLE invoices (legacy int)'))

  await t.test('a run with nothing to do skips every tenant from the registry and completes at once', async (t) => {
    const run = await start({})
    t.match(run, { status: 'completed', total: 5, skipped: 5, succeeded: 0, failed: 0, pending: 0 })
    t.ok(run.finished_at)
    const items = (await call('GET', `/fleet-migrations/${run.id}/tenants`)).json<{ items: Array<{ reason: string }> }>().items
    t.same(new Set(items.map((i) => i.reason)), new Set(['at the target version']))
    const webhook = await db.selectFrom('outbox').select('payload').where('name', '=', 'fleet_migration.completed').executeTakeFirst()
    t.match(webhook?.payload, { type: 'fleet_migration.completed', data: { fleet_migration: { id: run.id, status: 'completed', skipped: 5 } } })
  })

  await writeFile(path.join(dir, '0002_invoices.sql'), 'CREATE TABLE invoices (id bigint PRIMARY KEY, amount_cents integer NOT NULL);\n')

  await t.test('a dry run reports what would fail and changes nothing', async (t) => {
    const run = await finished((await start({ dry_run: true })).id)
    t.match(run, { status: 'completed_with_errors', total: 5, succeeded: 4, failed: 1 })
    t.match(run.failures, [{ tenant: 'delta', version: 2, error: /migration 2_invoices failed: relation "invoices" already exists/ }])
    for (const slug of ['alpha', 'bravo', 'charlie', 'echo']) {
      t.notOk(await hasTable(slug, 'invoices'), `${slug} has no invoices table`)
      t.same(await applied(slug), [1])
      t.equal((await registry(slug)).schema_version, 1)
    }
    t.match(await registry('delta'), { schema_version: 1, migration_failures: 0, migration_error: null }, 'a dry run counts no failure')
    t.equal(await db.selectFrom('outbox').select('id').where('name', '=', 'fleet_migration.completed').execute().then((r) => r.length), 1, 'no webhook for a dry run')
  })

  let canaryRun = ''
  await t.test('a failed canary stops the run before the other tenants are touched', async (t) => {
    const run = await finished((await start({ tenants: ['delta', 'alpha', 'bravo'], canary: 1 })).id)
    canaryRun = run.id
    t.match(run, { status: 'stopped', failed: 1, succeeded: 0, pending: 2, stop_reason: /canary/ })
    t.same(await applied('alpha'), [1])
    t.same(await applied('bravo'), [1])
    t.match(await registry('delta'), { state: 'active', schema_version: 1, migration_failures: 1, quarantined_at: null })
  })

  let mainRun = ''
  await t.test('one tenant fails, alone; the others move on; a suspended one is deferred; no fleet freeze', async (t) => {
    t.equal((await call('PATCH', '/tenants/echo/suspend')).statusCode, 202)
    await h.waitForState('echo', 'suspended')
    await workers.stop() // the run waits for workers: it is open while the rest of the API is used
    const run = await start({ concurrency: 2 })
    mainRun = run.id
    t.match(run, { status: 'running', total: 5, deferred: 1, pending: 4 })

    const second = await call('POST', '/fleet-migrations', { dry_run: true })
    t.equal(second.statusCode, 409)
    t.match(second.json(), { code: 'LANDLORD_FLEET_MIGRATION_RUNNING', running: run.id })
    t.equal((await call('POST', '/tenants', { slug: 'foxtrot' })).statusCode, 202, 'onboarding goes on during a run')

    workers = await h.startWorkers()
    const done = await finished(run.id)
    t.match(done, { status: 'completed_with_errors', total: 5, succeeded: 3, failed: 1, deferred: 1, pending: 0 })
    t.match(done.failures, [{ tenant: 'delta', version: 2, error: /already exists/ }])
    for (const slug of ['alpha', 'bravo', 'charlie']) {
      t.same(await applied(slug), [1, 2], `${slug} is at 2`)
      t.equal((await registry(slug)).schema_version, 2)
    }
    const delta = await registry('delta')
    t.match(delta, { state: 'active', schema_version: 1, migration_failures: 2, migration_error: /already exists/ }, 'the failure leaves its state alone')
    t.ok(delta.quarantined_at, 'failing twice in a row quarantines it')
    t.match((await call('GET', '/tenants/delta')).json(), { migration_error: /already exists/, quarantined_at: String })
    const items = (await call('GET', `/fleet-migrations/${run.id}/tenants?status=deferred`)).json<{ items: object[] }>().items
    t.match(items, [{ tenant: 'echo', reason: 'suspended: migrated before it next reports active' }])
    t.equal((await h.waitForState('foxtrot', 'active')).schema_version, 2, 'a tenant created during the run is born at the head')
    const events = (await call('GET', '/tenants/alpha/events')).json<{ items: Array<{ type: string; data: object }> }>().items
    t.match(events.at(-1), { type: 'schema_migrated', data: { version: 2 } })
    const delivered = await waitFor(async () => receiver.received.find((r) => JSON.stringify(r.json).includes(run.id)))
    t.ok(delivered.verified, 'signed for billing')
    t.match(delivered.json, { type: 'fleet_migration.completed', data: { fleet_migration: { id: run.id, status: 'completed_with_errors', succeeded: 3, failed: 1, deferred: 1 } } })
    t.notOk(receiver.received.some((r) => r.json.type !== 'fleet_migration.completed'), 'no tenant event reached this endpoint')
  })

  await t.test('a suspended tenant is migrated before it reports active again', async (t) => {
    t.equal((await call('PATCH', '/tenants/echo/resume')).statusCode, 202)
    const echo = await h.waitForState('echo', 'active')
    t.equal(echo.schema_version, 2)
    t.same(await applied('echo'), [1, 2])
  })

  await t.test('a quarantined tenant is left out of later runs unless named', async (t) => {
    const run = await finished((await start({})).id)
    t.match(run, { status: 'completed', failed: 0 })
    const items = (await call('GET', `/fleet-migrations/${run.id}/tenants`)).json<{ items: Array<{ tenant: string; reason: string }> }>().items
    t.match(items.find((i) => i.tenant === 'delta'), { reason: 'quarantined: retry it by name' })
    t.same(await applied('delta'), [1])
  })

  await t.test('fixing the tenant and retrying completes the run', async (t) => {
    await onTenantDb('delta', (c) => c.query('DROP TABLE invoices'))
    const res = await call('POST', `/fleet-migrations/${mainRun}/retry`)
    t.equal(res.statusCode, 202, res.body)
    const run = await finished(mainRun)
    t.match(run, { status: 'completed', succeeded: 4, failed: 0, deferred: 1, failures: [] })
    t.match(await registry('delta'), { schema_version: 2, migration_failures: 0, migration_error: null, quarantined_at: null })
    t.same(await applied('delta'), [1, 2])
    t.match((await call('POST', `/fleet-migrations/${mainRun}/retry`)).json(), { code: 'LANDLORD_NOTHING_TO_RETRY' })

    // The stopped canary run resumes too: its canary first, then the tenants it never started.
    t.equal((await call('POST', `/fleet-migrations/${canaryRun}/retry`)).statusCode, 202)
    const resumed = await finished(canaryRun)
    t.match(resumed, { status: 'completed', failed: 0, pending: 0, stop_reason: null })

    const schema = (await call('GET', '/fleet/schema')).json()
    t.same(schema, { head_version: 2, tenants: 6, versions: [{ version: 2, tenants: 6 }], laggards: [] })
    const metrics = (await call('GET', '/metrics')).body
    t.match(metrics, /landlord_tenants_by_schema_version\{version="2"\} 6/)
  })

  await t.test('cancel stops scheduling: tenants not started stay untouched', async (t) => {
    await writeFile(path.join(dir, '0003_notes.sql'), 'CREATE TABLE notes (id bigint PRIMARY KEY);\n')
    await workers.stop()
    const run = await start({ concurrency: 1 })
    const res = await call('POST', `/fleet-migrations/${run.id}/cancel`)
    t.equal(res.statusCode, 202)
    t.match(res.json(), { status: 'cancelled', pending: 6, stop_reason: 'cancelled by request', finished_at: String })
    t.equal((await call('POST', `/fleet-migrations/${run.id}/cancel`)).statusCode, 409, 'a finished run cannot be cancelled')
    workers = await h.startWorkers()
    // The job queued before the cancel turns up and finds itself unwanted.
    await waitFor(async () => (((await h.queues.fleet.getJobCounts('completed')).completed ?? 0) >= 1 ? true : undefined))
    for (const slug of SLUGS) t.notOk(await hasTable(slug, 'notes'), `${slug} untouched`)
  })

  await t.test('a file changed after it was applied fails each tenant that has it, with a clear error', async (t) => {
    await writeFile(path.join(dir, '0002_invoices.sql'), 'CREATE TABLE invoices (id bigint PRIMARY KEY);\n')
    const run = await finished((await start({ tenants: ['alpha'] })).id)
    t.match(run.failures, [{ tenant: 'alpha', version: 2, error: 'migration 2_invoices was changed after it was applied (checksum differs)' }])
    t.notOk(await hasTable('alpha', 'notes'))
  })

  await t.test('bad requests change nothing', async (t) => {
    const before = await db.selectFrom('fleet_migrations').select('id').execute()
    const cases: Array<[object, number, RegExp | string]> = [
      [{ tenants: ['nosuchtenant'] }, 422, 'LANDLORD_UNKNOWN_TENANTS'],
      [{ target_version: 7 }, 422, 'LANDLORD_UNKNOWN_TARGET_VERSION'],
      [{ concurrency: 0 }, 400, /./],
      [{ canary: -1 }, 400, /./],
      [{ on_error: 'explode' }, 400, /./],
      [{ tenants: ['Not A Slug'] }, 400, /./],
      [{ surprise: true }, 400, /./],
    ]
    for (const [body, status, code] of cases) {
      const res = await call('POST', '/fleet-migrations', body)
      t.equal(res.statusCode, status, JSON.stringify(body))
      t.match(res.headers['content-type'], /^application\/problem\+json/)
      t.match(res.json().code ?? res.json().title, code)
    }
    t.equal((await call('GET', '/fleet-migrations/00000000-0000-4000-8000-000000000000')).statusCode, 404)
    t.equal((await call('GET', '/fleet-migrations/not-a-uuid')).statusCode, 404)
    t.equal((await app.inject({ method: 'GET', url: '/fleet-migrations' })).statusCode, 401)
    t.same(await db.selectFrom('fleet_migrations').select('id').execute(), before)
  })

  await t.test('runs are listed newest first', async (t) => {
    const list = (await call('GET', '/fleet-migrations?limit=2')).json<{ items: Run[]; next_cursor: string | null }>()
    t.equal(list.items.length, 2)
    t.ok(list.next_cursor)
    const next = (await call('GET', `/fleet-migrations?limit=100&cursor=${list.next_cursor}`)).json<{ items: Run[] }>()
    t.equal(list.items.length + next.items.length, 7, 'every run once (a retry is the same run)')
  })
})
