// Fleet migrations against what can go wrong on purpose: a tenant that uses
// its own credentials to make the migration hang, a migration file that
// commits by itself, a tenant ahead of the folder. Each fails that tenant,
// alone, with a clear error; the run goes on and ends.
import { rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import t from 'tap'
import { auth, loginAs, setup, waitFor, type Creds } from '../helpers.js'
import { appliedVersions, hasTable, migrationsDir, onTenantDb } from './fixtures.js'

interface Run {
  id: string
  status: string
  succeeded: number
  failed: number
  finished_at: string | null
  failures: Array<{ tenant: string; version: number | null; error: string }>
}

t.test('hostile tenants and broken files fail alone', async (t) => {
  const dir = await migrationsDir(t)
  const h = await setup(t, { TENANT_MIGRATIONS_DIR: dir, TENANT_MIGRATION_TIMEOUT: 'PT1S', JOB_ATTEMPTS: '2' })
  const call = async (method: 'GET' | 'POST', url: string, payload?: object) => h.app.inject({ method, url, headers: auth, ...(payload ? { payload } : {}) })
  const run = async (body: object): Promise<Run> => {
    const res = await call('POST', '/fleet-migrations', body)
    t.equal(res.statusCode, 202, res.body)
    const id = res.json<Run>().id
    return waitFor(async () => {
      const r = (await call('GET', `/fleet-migrations/${id}`)).json<Run>()
      return r.finished_at ? r : undefined
    }, 60_000, () => `run ${id} to finish`)
  }

  await h.startWorkers()
  for (const slug of ['honest', 'sleeper', 'ahead']) t.equal((await call('POST', '/tenants', { slug })).statusCode, 202)
  for (const slug of ['honest', 'sleeper', 'ahead']) await h.waitForState(slug, 'active')

  await t.test('a tenant that makes its ledger sleep holds up only itself, for TENANT_MIGRATION_TIMEOUT', async (t) => {
    const creds = (await call('POST', '/tenants/sleeper/credentials')).json<Creds>()
    const session = await loginAs(creds)
    await session.query('DROP TABLE landlord_schema_migrations')
    await session.query(`CREATE VIEW landlord_schema_migrations AS
      SELECT 1 AS version, 'baseline'::text AS name, ''::text AS checksum, now() AS applied_at FROM (SELECT pg_sleep(3600)) s`)
    await session.end()
    await writeFile(path.join(dir, '0002_notes.sql'), 'CREATE TABLE notes (id bigint PRIMARY KEY);\n')
    const started = Date.now()
    const r = await run({ tenants: ['honest', 'sleeper'] })
    t.ok(Date.now() - started < 30_000, 'the run ended in seconds')
    t.match(r, { status: 'completed_with_errors', succeeded: 1, failed: 1 })
    t.match(r.failures, [{ tenant: 'sleeper', error: /statement timeout/ }])
  })

  await t.test('a file that commits by itself is refused and not recorded', async (t) => {
    await writeFile(path.join(dir, '0003_sneaky.sql'), 'CREATE TABLE first_half (id int);\nCOMMIT;\nCREATE TABLE second_half (id int);\n')
    const r = await run({ tenants: ['honest'] })
    t.match(r.failures, [{ tenant: 'honest', version: 3, error: 'migration 3_sneaky ends the transaction itself (COMMIT or ROLLBACK in the file); remove it' }])
    t.same(await appliedVersions(h.config, 'honest'), [1, 2], 'version 3 is not recorded')
    await rm(path.join(dir, '0003_sneaky.sql'))
  })

  await t.test('a tenant ahead of the folder is left untouched', async (t) => {
    await onTenantDb(h.config, 'ahead', (c) => c.query(`INSERT INTO landlord_schema_migrations (version, name, checksum) VALUES (99, 'future', 'x')`))
    const r = await run({ tenants: ['ahead'] })
    t.match(r.failures, [{ tenant: 'ahead', error: 'tenant has migrations this folder does not know: 99' }])
    t.notOk(await hasTable(h.config, 'ahead', 'notes'), 'nothing was applied')
  })
})
