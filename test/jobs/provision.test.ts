// Provisioning against the real cluster: the database is really there, closed
// to everyone else, migrated, and a second run changes nothing.
import { promises as fs } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import type { Job } from 'bullmq'
import pg from 'pg'
import t from 'tap'
import { withDatabase } from '../../src/db/index.js'
import type { StepContext } from '../../src/jobs/context.js'
import type { LifecycleJobData } from '../../src/jobs/queues.js'
import { migrateAsOwner, provision } from '../../src/jobs/workers/provision.js'
import { createTenant } from '../../src/lifecycle/transition.js'
import { quoteIdent } from '../../src/tenancy/identifiers.js'
import { readTenantMigrations } from '../../src/tenancy/migrations.js'
import { ROOT, auth, setup, type Harness } from '../helpers.js'

async function connectAs(url: string, user: string, database: string): Promise<unknown> {
  const u = new URL(withDatabase(url, database))
  u.username = user
  const client = new pg.Client({ connectionString: u.toString() })
  try {
    await client.connect()
    return undefined
  } catch (err) {
    return err
  } finally {
    await client.end().catch(() => {})
  }
}

/** Everything provisioning decides: objects and owners, grants, recorded migrations. */
async function fingerprint(h: Harness, database: string) {
  const acl = await h.cluster.query('SELECT datacl::text AS acl, pg_get_userbyid(datdba) AS owner FROM pg_database WHERE datname = $1', [database])
  const client = new pg.Client({ connectionString: withDatabase(h.config.tenantClusterUrl, database) })
  await client.connect()
  try {
    const objects = await client.query(
      `SELECT c.relname, c.relkind, pg_get_userbyid(c.relowner) AS owner FROM pg_class c
       JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' ORDER BY 1`,
    )
    const migrations = await client.query('SELECT version, name, checksum, applied_at FROM landlord_schema_migrations ORDER BY version')
    const schema = await client.query("SELECT pg_get_userbyid(nspowner) AS owner FROM pg_namespace WHERE nspname = 'public'")
    return { database: acl.rows, objects: objects.rows, migrations: migrations.rows, schemaOwner: schema.rows[0]?.owner as string }
  } finally {
    await client.end()
  }
}

function stepContext(h: Harness, tenant: StepContext['tenant']): StepContext {
  return {
    deps: h.workerDeps,
    tenant,
    job: {} as Job<LifecycleJobData>,
    log: h.log,
    checkpoint: async (_name, fn) => fn(),
  }
}

t.test('provisioning', async (t) => {
  const h = await setup(t)
  const workers = await h.startWorkers()
  const prefix = h.config.tenantDbPrefix
  const stranger = `${prefix}stranger`
  await h.cluster.query(`CREATE ROLE ${quoteIdent(stranger)} LOGIN`)

  const res = await h.app.inject({ method: 'POST', url: '/tenants', headers: auth, payload: { slug: 'acme' } })
  t.equal(res.statusCode, 202)
  const tenant = await h.waitForState('acme', 'active')
  const database = `${prefix}acme`

  t.test('the database exists, owned by the admin role, its contents by the tenant role, at the latest schema version', async (t) => {
    const fp = await fingerprint(h, database)
    t.same(fp.database.map((r) => r.owner), ['postgres'], 'the tenant cannot ALTER or DROP the database itself')
    t.match(fp.database[0].acl, new RegExp(`"?${tenant.owner_role}"?=CTc/postgres`), 'the tenant role may connect, use temp tables and create schemas')
    t.equal(fp.schemaOwner, tenant.owner_role, 'the tenant role owns the public schema')
    const tables = fp.objects.filter((o) => o.relkind === 'r')
    t.same(
      tables.map((o) => o.relname),
      ['audit_log', 'landlord_schema_migrations', 'project_members', 'projects', 'users'],
    )
    t.ok(tables.every((o) => o.owner === tenant.owner_role), 'the tenant role owns every table')
    t.ok(fp.objects.some((o) => o.relname === 'projects_owner' && o.relkind === 'i'), 'indexes are there')
    t.equal(fp.migrations.length, 1)
    t.match(fp.migrations, [{ version: 1, name: 'baseline', checksum: /^[0-9a-f]{64}$/ }])
    t.equal(tenant.schema_version, 1)
  })

  t.test('a role with no grant cannot connect to the tenant database, though it can connect elsewhere', async (t) => {
    await h.cluster.query(`CREATE DATABASE ${quoteIdent(`${prefix}open`)}`)
    t.equal(await connectAs(h.config.tenantClusterUrl, stranger, `${prefix}open`), undefined, 'the probe role itself works')
    const err = await connectAs(h.config.tenantClusterUrl, stranger, database)
    t.match(err, { code: '42501', message: /permission denied for database/ })
    const temp = await h.cluster.query(`SELECT has_database_privilege($1, $2, 'TEMPORARY') AS temp`, [stranger, database])
    t.equal(temp.rows[0].temp, false, 'TEMPORARY revoked from PUBLIC too')
  })

  t.test('running the provisioning step again changes nothing', async (t) => {
    const before = await fingerprint(h, database)
    const result = await provision(stepContext(h, tenant))
    t.same(result, { schemaVersion: 1 })
    t.same(await fingerprint(h, database), before)
  })

  t.test('a run after a crash mid-way (role and database made, grants not yet closed) ends in the same database', async (t) => {
    await workers.stop()
    const created = await createTenant(h.db, prefix, { slug: 'halfway' }, 'test')
    // What the crashed attempt left: the role and a database still open to PUBLIC.
    await h.cluster.query(`CREATE ROLE ${quoteIdent(created.owner_role)} NOLOGIN`)
    await h.cluster.query(`COMMENT ON ROLE ${quoteIdent(created.owner_role)} IS 'landlord tenant ${created.id}'`)
    await h.cluster.query(`CREATE DATABASE ${quoteIdent(created.database_name)} OWNER ${quoteIdent(created.owner_role)}`)
    t.equal(await connectAs(h.config.tenantClusterUrl, stranger, created.database_name), undefined, 'open to PUBLIC before the rerun')
    await h.startWorkers()
    const done = await h.waitForState('halfway', 'active')
    t.equal(done.schema_version, 1)
    t.match(await connectAs(h.config.tenantClusterUrl, stranger, created.database_name), { code: '42501' })
    const a = await fingerprint(h, database)
    const b = await fingerprint(h, created.database_name)
    t.same(
      b.objects.map((o) => [o.relname, o.relkind]),
      a.objects.map((o) => [o.relname, o.relkind]),
      'same schema as a tenant provisioned in one go',
    )
  })

  t.test("a role of the tenant's name that Landlord did not make for it is never adopted", async (t) => {
    // As another Landlord instance with an overlapping prefix would have made it.
    await h.cluster.query(`CREATE ROLE ${quoteIdent(`${prefix}twin`)} NOLOGIN`)
    await h.cluster.query(`COMMENT ON ROLE ${quoteIdent(`${prefix}twin`)} IS 'landlord tenant 00000000-0000-4000-8000-000000000000'`)
    await h.cluster.query(`CREATE DATABASE ${quoteIdent(`${prefix}twin`)} OWNER ${quoteIdent(`${prefix}twin`)}`)
    await h.app.inject({ method: 'POST', url: '/tenants', headers: auth, payload: { slug: 'twin' } })
    const failed = await h.waitForState('twin', 'failed')
    t.match(failed.error, /was not made by Landlord for this tenant; refusing to adopt it/)
    const events = (await h.app.inject({ url: '/tenants/twin/events', headers: auth })).json().items
    t.match(events.at(-1), { type: 'EFFECTS_FAILED', data: { attempts: 1 } }, 'not retried')

    // Nor is it dropped when this tenant is wiped.
    const wiped = await h.app.inject({ method: 'DELETE', url: '/tenants/twin?retention=PT0S', headers: auth })
    t.equal(wiped.statusCode, 202)
    const refused = await h.waitForState('twin', 'failed')
    t.match(refused.error, /not made by Landlord for this tenant; refusing to touch it/)
    t.equal((await h.cluster.query('SELECT 1 FROM pg_database WHERE datname = $1', [`${prefix}twin`])).rowCount, 1, "the other instance's database is intact")
  })

  t.test('a database of the same name that Landlord did not create is never adopted', async (t) => {
    await h.cluster.query(`CREATE DATABASE ${quoteIdent(`${prefix}squatter`)}`)
    await h.app.inject({ method: 'POST', url: '/tenants', headers: auth, payload: { slug: 'squatter' } })
    const failed = await h.waitForState('squatter', 'failed')
    t.match(failed.error, /database \S+squatter exists but was not made by Landlord for this tenant \(it carries no Landlord marker\)/)
    const status = await h.app.inject({ url: '/tenants/squatter/status', headers: auth })
    t.match(status.json(), { state: 'failed', stable: true, error: /refusing to touch it/ })
  })
})

t.test('failures: retried with backoff, then failed with the error visible; RETRY resumes', async (t) => {
  const dir = path.join(await fs.mkdtemp(path.join(os.tmpdir(), 'landlord-migrations-')), 'later')
  t.teardown(() => fs.rm(path.dirname(dir), { recursive: true, force: true }))
  const h = await setup(t, { TENANT_MIGRATIONS_DIR: dir, JOB_ATTEMPTS: '3', JOB_BACKOFF: '20ms' })
  await h.startWorkers()

  t.test('a transient error (the folder is missing) is retried, then the tenant is failed', async (t) => {
    await h.app.inject({ method: 'POST', url: '/tenants', headers: auth, payload: { slug: 'flaky' } })
    const failed = await h.waitForState('flaky', 'failed')
    t.match(failed.error, /ENOENT/)
    const events = (await h.app.inject({ url: '/tenants/flaky/events', headers: auth })).json().items
    t.match(events.at(-1), { type: 'EFFECTS_FAILED', from_state: 'provisioning', to_state: 'failed', data: { step: 'provision', attempts: 3 } })
    t.equal((await h.app.inject({ url: '/tenants/flaky/status', headers: auth })).json().error, failed.error)
  })

  t.test('after the cause is fixed, RETRY resumes provisioning and the tenant becomes active', async (t) => {
    await fs.mkdir(dir, { recursive: true })
    await fs.copyFile(path.join(ROOT, 'tenant-migrations', '0001_baseline.sql'), path.join(dir, '0001_baseline.sql'))
    const retry = await h.app.inject({ method: 'POST', url: '/tenants/flaky/retry', headers: auth })
    t.equal(retry.statusCode, 202)
    t.match(retry.json(), { state: 'provisioning', operation: 'provision' })
    const active = await h.waitForState('flaky', 'active')
    t.equal(active.schema_version, 1)
    t.equal(active.error, null)
  })

  t.test('a broken migration fails at once (no pointless retries) and names the file', async (t) => {
    await fs.writeFile(path.join(dir, '0002_broken.sql'), 'CREATE TABLE oops (;')
    t.teardown(() => fs.rm(path.join(dir, '0002_broken.sql')))
    await h.app.inject({ method: 'POST', url: '/tenants', headers: auth, payload: { slug: 'broken' } })
    const failed = await h.waitForState('broken', 'failed')
    t.match(failed.error, /migration 2_broken failed: syntax error/)
    const events = (await h.app.inject({ url: '/tenants/broken/events', headers: auth })).json().items
    t.match(events.at(-1), { type: 'EFFECTS_FAILED', data: { attempts: 1 } })
  })

  // A tenant that tries to make the migration runner run its code with admin
  // rights: test/tenancy/hostile-tenant.test.ts.

  t.test('an applied migration whose file changed is refused', async (t) => {
    const tenant = await h.waitForState('flaky', 'active')
    const migrations = await readTenantMigrations(dir)
    const changed = migrations.map((m) => ({ ...m, checksum: m.checksum.replace(/^./, (c) => (c === '0' ? '1' : '0')) }))
    await t.rejects(migrateAsOwner(h.cluster, h.config.tenantClusterUrl, tenant, changed), /changed after it was applied/)
    t.equal(await migrateAsOwner(h.cluster, h.config.tenantClusterUrl, tenant, migrations), 1, 'the unchanged files still pass')
  })
})
