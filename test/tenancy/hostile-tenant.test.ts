// A hostile tenant holding its own issued credentials: what its login can
// reach, alter or block on the cluster. Every attack is refused, the tenant
// keeps full DDL and DML inside its own database, and it still wipes completely.
import { promises as fs } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import pg from 'pg'
import t from 'tap'
import { withDatabase } from '../../src/db/index.js'
import { migrateAsOwner } from '../../src/jobs/workers/provision.js'
import { hardenCluster } from '../../src/tenancy/cluster.js'
import { quoteIdent } from '../../src/tenancy/identifiers.js'
import { readTenantMigrations } from '../../src/tenancy/migrations.js'
import { ROOT, auth, loginAs, setup, waitFor, type Creds, type Harness } from '../helpers.js'

async function refusal(fn: () => Promise<unknown>): Promise<{ code?: string; message: string } | undefined> {
  try {
    await fn()
    return undefined
  } catch (err) {
    return err as { code?: string; message: string }
  }
}

async function credentials(h: Harness, slug: string): Promise<Creds> {
  const res = await h.app.inject({ method: 'POST', url: `/tenants/${slug}/credentials`, headers: auth })
  if (res.statusCode !== 201) throw new Error(`credentials for ${slug}: ${res.statusCode} ${res.body}`)
  return res.json()
}

async function onboard(h: Harness, slug: string) {
  const res = await h.app.inject({ method: 'POST', url: '/tenants', headers: auth, payload: { slug } })
  if (res.statusCode !== 202) throw new Error(`POST /tenants ${slug}: ${res.statusCode} ${res.body}`)
  return h.waitForState(slug, 'active')
}

async function datacl(h: Harness, database: string) {
  const r = await h.cluster.query<{ owner: string; allow: boolean; template: boolean; limit: number; publicConnect: boolean }>(
    `SELECT pg_get_userbyid(datdba) AS owner, datallowconn AS allow, datistemplate AS template, datconnlimit AS limit,
            has_database_privilege('public', oid, 'CONNECT') AS "publicConnect"
       FROM pg_database WHERE datname = $1`,
    [database],
  )
  return r.rows[0]
}

t.test('a hostile tenant with its own credentials', async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'landlord-hostile-'))
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }))
  await fs.copyFile(path.join(ROOT, 'tenant-migrations', '0001_baseline.sql'), path.join(dir, '0001_baseline.sql'))
  const h = await setup(t, { TENANT_MIGRATIONS_DIR: dir })
  await h.startWorkers()
  const prefix = h.config.tenantDbPrefix
  const control = new URL(h.config.databaseUrl).pathname.slice(1)

  const victim = await onboard(h, 'victim')
  const evil = await onboard(h, 'evil')
  const creds = await credentials(h, 'evil')
  const session = await loginAs(creds)
  t.teardown(() => session.end().catch(() => {}))

  t.test('its login connects to its own database and nowhere else on the cluster', async (t) => {
    for (const database of ['postgres', 'template1', control, victim.database_name]) {
      t.match(await refusal(() => loginAs(creds, database).then((c) => c.end())), { code: '42501' }, `refused by ${database}`)
    }
    t.match(await refusal(() => loginAs(creds, 'template0').then((c) => c.end())), { code: '55000' }, 'template0 accepts no one')
    const open = await h.cluster.query(
      "SELECT datname FROM pg_database WHERE datname = ANY($1) AND has_database_privilege('public', oid, 'CONNECT')",
      [['postgres', 'template1', control]],
    )
    t.same(open.rows, [], 'PUBLIC has CONNECT on none of the maintenance or control databases')
  })

  t.test('it keeps full DDL and DML inside its own database', async (t) => {
    await session.query('CREATE TABLE notes (id serial PRIMARY KEY, body text NOT NULL)')
    await session.query("INSERT INTO notes (body) VALUES ('mine')")
    await session.query('CREATE SCHEMA reporting')
    await session.query('CREATE VIEW reporting.note_count AS SELECT count(*) AS n FROM public.notes')
    await session.query('CREATE EXTENSION IF NOT EXISTS pgcrypto')
    await session.query('CREATE TEMP TABLE scratch (x int)')
    await session.query('ALTER TABLE users ADD COLUMN nickname text')
    await session.query('SELECT lo_create(0)')
    const n = await session.query('SELECT n FROM reporting.note_count')
    t.equal(Number(n.rows[0].n), 1)
    const owners = await session.query("SELECT DISTINCT pg_get_userbyid(relowner) AS owner FROM pg_class WHERE relname IN ('notes', 'users')")
    t.same(owners.rows, [{ owner: evil.owner_role }], 'what it creates belongs to the tenant role, not to the lease')
  })

  t.test('it cannot alter, rename, re-own, template, fence or drop its database', async (t) => {
    const own = quoteIdent(evil.database_name)
    const before = await datacl(h, evil.database_name)
    const attacks = [
      `ALTER DATABASE ${own} IS_TEMPLATE true`,
      `ALTER DATABASE ${own} CONNECTION LIMIT 0`,
      `ALTER DATABASE ${own} ALLOW_CONNECTIONS false`,
      `ALTER DATABASE ${own} OWNER TO ${quoteIdent(creds.username)}`,
      `ALTER DATABASE ${own} OWNER TO ${quoteIdent(evil.owner_role)}`,
      `ALTER DATABASE ${own} RENAME TO ${quoteIdent(`${prefix}stolen`)}`,
      `ALTER DATABASE ${own} SET search_path = evil, public`,
      `COMMENT ON DATABASE ${own} IS 'landlord tenant ${victim.id}'`,
      `DROP DATABASE ${quoteIdent(victim.database_name)}`,
      `CREATE DATABASE ${quoteIdent(`${prefix}side`)}`,
      `ALTER ROLE ${quoteIdent(evil.owner_role)} SUPERUSER`,
      `ALTER ROLE ${quoteIdent(evil.owner_role)} LOGIN`,
      `ALTER ROLE ${quoteIdent(creds.username)} CONNECTION LIMIT -1`,
      `GRANT ${quoteIdent(evil.owner_role)} TO ${quoteIdent(victim.owner_role)}`,
      `ALTER SYSTEM SET max_connections = 5`,
      `COPY (SELECT 1) TO PROGRAM 'true'`,
      `SELECT pg_read_file('postgresql.conf')`,
    ]
    for (const sql of attacks) t.match(await refusal(() => session.query(sql)), { code: '42501' }, sql)
    // A non-owner's GRANT is only a warning ("no privileges were granted"): what counts is the ACL below.
    await session.query(`GRANT CONNECT ON DATABASE ${own} TO PUBLIC`)
    t.match(await refusal(() => session.query(`DROP DATABASE ${own}`)), { code: /42501|55006/ }, 'its own database cannot be dropped')
    const admin = await h.cluster.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')
    t.match(await refusal(() => session.query('SELECT pg_terminate_backend($1)', [admin.rows[0]!.pid])), { code: '42501' }, "Landlord's sessions cannot be ended")
    t.same(await datacl(h, evil.database_name), before, 'the database is exactly as it was')
    t.ok((await h.cluster.query('SELECT 1 FROM pg_database WHERE datname = $1', [victim.database_name])).rowCount, "the victim's database is there")
  })

  t.test("nothing it writes reaches another tenant's new database, and its sessions cannot stop provisioning", async (t) => {
    const extra = await loginAs(creds)
    t.teardown(() => extra.end().catch(() => {}))
    await extra.query('BEGIN')
    await extra.query('LOCK TABLE users IN ACCESS EXCLUSIVE MODE')
    const newcomer = await onboard(h, 'newcomer')
    t.equal(newcomer.schema_version, 1)
    const client = new pg.Client({ connectionString: withDatabase(h.config.tenantClusterUrl, newcomer.database_name) })
    await client.connect()
    t.teardown(() => client.end())
    const objects = await client.query("SELECT relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND relkind = 'r' ORDER BY 1")
    t.same(objects.rows.map((r) => r.relname), ['audit_log', 'landlord_schema_migrations', 'project_members', 'projects', 'users'])
    t.equal(Number((await client.query('SELECT count(*) AS n FROM pg_largeobject_metadata')).rows[0].n), 0, 'no large object came along')
    t.equal(Number((await client.query("SELECT count(*) AS n FROM pg_namespace WHERE nspname = 'reporting'")).rows[0].n), 0)
    await extra.query('ROLLBACK')
  })

  t.test('tenant migrations run in a session that cannot become superuser again', async (t) => {
    // The tenant swaps its bookkeeping table for a view over a function that
    // undoes any SET ROLE, then grants its role SUPERUSER.
    await session.query('ALTER TABLE landlord_schema_migrations RENAME TO real_migrations')
    await session.query(`
      CREATE FUNCTION escalate() RETURNS SETOF real_migrations LANGUAGE plpgsql AS $$
      BEGIN
        RESET ROLE;
        EXECUTE format('ALTER ROLE %I SUPERUSER', '${evil.owner_role}');
        RETURN QUERY SELECT * FROM real_migrations;
      END $$`)
    await session.query('CREATE VIEW landlord_schema_migrations AS SELECT * FROM escalate()')
    await t.rejects(migrateAsOwner(h.cluster, h.config.tenantClusterUrl, evil, await readTenantMigrations(dir)), /must be superuser|permission denied/)
    const supers = await h.cluster.query('SELECT rolname FROM pg_roles WHERE rolsuper AND rolname LIKE $1', [`${evil.owner_role}%`])
    t.same(supers.rows, [], 'no role of the tenant became a superuser')
    t.same((await h.cluster.query('SELECT 1 FROM pg_roles WHERE rolname LIKE $1', [`${evil.owner_role}-m%`])).rows, [], 'the migration login is gone')
    await session.query('DROP VIEW landlord_schema_migrations; DROP FUNCTION escalate(); ALTER TABLE real_migrations RENAME TO landlord_schema_migrations')
  })

  t.test("a squatter's database under a tenant's name is never fenced, opened or dropped", async (t) => {
    const name = `${prefix}squat`
    await h.cluster.query(`CREATE DATABASE ${quoteIdent(name)}`)
    const squatter = new pg.Client({ connectionString: withDatabase(h.config.tenantClusterUrl, name) })
    await squatter.connect()
    squatter.on('error', () => {})
    t.teardown(() => squatter.end().catch(() => {}))
    await h.app.inject({ method: 'POST', url: '/tenants', headers: auth, payload: { slug: 'squat' } })
    await h.waitForState('squat', 'failed')
    const before = await datacl(h, name)
    t.equal((await h.app.inject({ method: 'DELETE', url: '/tenants/squat?retention=P1D', headers: auth })).statusCode, 202)
    const failed = await waitFor(async () => {
      const s = (await h.app.inject({ url: '/tenants/squat/status', headers: auth })).json()
      return s.state === 'failed' && s.error?.includes('refusing to touch it') ? s : undefined
    })
    t.match(failed.error, /carries no Landlord marker/, 'the decommission failed with the reason')
    t.same(await datacl(h, name), before, 'not fenced, grants untouched')
    t.same((await squatter.query('SELECT 1 AS alive')).rows, [{ alive: 1 }], "the squatter's session was not ended")
    t.equal((await h.app.inject({ method: 'DELETE', url: '/tenants/squat?retention=PT0S', headers: auth })).statusCode, 202)
    await waitFor(async () => {
      const s = (await h.app.inject({ url: '/tenants/squat/status', headers: auth })).json()
      return s.state === 'failed' && s.operation === null ? s : undefined
    })
    t.same(await datacl(h, name), before, 'a wipe neither drops nor changes it either')
  })

  t.test('a tenant that never finished provisioning is restored only by finishing it', async (t) => {
    const broken = path.join(dir, '0002_broken.sql')
    await fs.writeFile(broken, 'CREATE TABLE oops (;')
    await h.app.inject({ method: 'POST', url: '/tenants', headers: auth, payload: { slug: 'halfmade' } })
    const failed = await h.waitForState('halfmade', 'failed')
    t.equal(failed.schema_version, null)
    await fs.rm(broken)
    await h.app.inject({ method: 'DELETE', url: '/tenants/halfmade?retention=P1D', headers: auth })
    await h.waitForState('halfmade', 'decommissioned')
    const restore = await h.app.inject({ method: 'POST', url: '/tenants/halfmade/restore', headers: auth })
    t.equal(restore.statusCode, 202)
    t.match(restore.json(), { state: 'provisioning', operation: 'provision' }, 'restore resumes provisioning')
    const active = await h.waitForState('halfmade', 'active')
    t.equal(active.schema_version, 1, 'active only once fully migrated')
    const hooks = await h.db.selectFrom('outbox').select('name').where('tenant_id', '=', active.id).where('kind', '=', 'webhook').orderBy('seq').execute()
    t.same(
      hooks.map((r) => r.name),
      ['tenant.created', 'tenant.provisioning_failed', 'tenant.decommissioned', 'tenant.provisioned'],
      'billing hears tenant.provisioned, and no tenant.restored for a tenant that was never usable',
    )
    const c = await loginAs(await credentials(h, 'halfmade'))
    t.same((await c.query('SELECT count(*)::int AS n FROM users')).rows, [{ n: 0 }])
    await c.end()
  })

  t.test('a database an earlier version let the tenant own is taken back at the next fence', async (t) => {
    await onboard(h, 'legacy')
    const legacy = await h.waitForState('legacy', 'active')
    await h.cluster.query(`ALTER DATABASE ${quoteIdent(legacy.database_name)} OWNER TO ${quoteIdent(legacy.owner_role)}`)
    t.equal((await h.app.inject({ method: 'PATCH', url: '/tenants/legacy/suspend', headers: auth, payload: {} })).statusCode, 202)
    await h.waitForState('legacy', 'suspended')
    t.match(await datacl(h, legacy.database_name), { owner: 'postgres', allow: false }, 'owned by the admin role and fenced')
    t.equal((await h.app.inject({ method: 'PATCH', url: '/tenants/legacy/resume', headers: auth })).statusCode, 202)
    await h.waitForState('legacy', 'active')
    const c = await loginAs(await credentials(h, 'legacy'))
    t.teardown(() => c.end())
    await c.query('CREATE TABLE after_upgrade (x int)')
    t.match(await refusal(() => c.query(`ALTER DATABASE ${quoteIdent(legacy.database_name)} IS_TEMPLATE true`)), { code: '42501' })
  })

  t.test('the wipe cannot be blocked and its receipt is true', async (t) => {
    // Objects owned by the lease itself (SET ROLE NONE drops the owner role it acts
    // as), a session left open, and a template flag set as an older version allowed.
    await session.query('SET ROLE NONE')
    await session.query('CREATE TABLE lease_owned (x int)')
    await h.cluster.query(`ALTER DATABASE ${quoteIdent(evil.database_name)} IS_TEMPLATE true`)
    const res = await h.app.inject({ method: 'DELETE', url: '/tenants/evil?retention=PT0S', headers: auth })
    t.equal(res.statusCode, 202)
    const wiped = await h.waitForState('evil', 'wiped')
    t.equal((await h.cluster.query('SELECT 1 FROM pg_database WHERE datname = $1', [evil.database_name])).rowCount, 0, 'the database is gone')
    t.same((await h.cluster.query('SELECT rolname FROM pg_roles WHERE rolname LIKE $1', [`${evil.owner_role}%`])).rows, [], 'every role is gone')
    const key = await h.db.selectFrom('tenant_keys').select(['wrapped_key', 'destroyed_at']).where('tenant_id', '=', wiped.id).executeTakeFirstOrThrow()
    t.equal(key.wrapped_key, null, 'key material destroyed')
    const receipt = await h.db.selectFrom('tenant_events').select('data').where('tenant_id', '=', wiped.id).where('type', '=', 'WIPE_RECEIPT').executeTakeFirstOrThrow()
    t.match(receipt.data, {
      database: { name: evil.database_name, dropped: true },
      key_material: 'destroyed',
      roles_dropped: [evil.owner_role, creds.username],
    })
    t.ok((receipt.data as { leases_revoked: number }).leases_revoked >= 1, 'the lease is counted')
    t.match(await refusal(() => session.query('SELECT 1')), { message: /terminat|Connection terminated|not queryable/ }, 'its session was ended')
  })
})

t.test('closing the maintenance databases', async (t) => {
  const h = await setup(t)
  const prefix = h.config.tenantDbPrefix
  const open = `${prefix}open`
  const weak = `${prefix}weakadmin`
  await h.cluster.query(`CREATE DATABASE ${quoteIdent(open)}`)
  await h.cluster.query(`CREATE ROLE ${quoteIdent(weak)} LOGIN CREATEDB CREATEROLE`)
  const url = new URL(withDatabase(h.config.tenantClusterUrl, open))
  url.username = weak
  const weakPool = new pg.Pool({ connectionString: url.toString(), max: 1 })
  t.teardown(() => weakPool.end())

  t.test('without the privilege, what should be closed is reported, not silently left open', async (t) => {
    const report = await hardenCluster(weakPool, [open])
    t.same(report.refused, [open])
    t.ok(report.open.includes(open))
  })

  t.test('with it, CONNECT is revoked from PUBLIC, once', async (t) => {
    const first = await hardenCluster(h.cluster, [open])
    t.same(first.closed, [open])
    t.notOk(first.open.includes(open))
    t.notOk(first.open.includes('postgres') || first.open.includes('template1'))
    const again = await hardenCluster(h.cluster, [open])
    t.same(again.closed, [], 'nothing left to change')
  })
})
