// Races and locks a hostile tenant can play with its own credentials, against
// another tenant's provisioning and against Landlord's own sessions, and a
// crash between two provisioning steps: none of them gets another tenant's
// data, stalls Landlord, or makes a wipe fail.
import pg from 'pg'
import t from 'tap'
import { quoteIdent, tenantMarker } from '../../src/tenancy/identifiers.js'
import { ensureRole } from '../../src/tenancy/roles.js'
import { auth, loginAs, setup, waitFor, type Creds, type Harness } from '../helpers.js'

async function onboard(h: Harness, slug: string) {
  const res = await h.app.inject({ method: 'POST', url: '/tenants', headers: auth, payload: { slug } })
  if (res.statusCode !== 202) throw new Error(`POST /tenants ${slug}: ${res.statusCode} ${res.body}`)
  return h.waitForState(slug, 'active')
}

async function credentials(h: Harness, slug: string): Promise<Creds> {
  const res = await h.app.inject({ method: 'POST', url: `/tenants/${slug}/credentials`, headers: auth })
  if (res.statusCode !== 201) throw new Error(`credentials for ${slug}: ${res.statusCode} ${res.body}`)
  return res.json()
}

/** Whether `p` settles within `ms`. */
async function within<T>(p: Promise<T>, ms: number): Promise<{ settled: boolean; value?: T; error?: unknown }> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<{ settled: false }>((r) => (timer = setTimeout(() => r({ settled: false }), ms)))
  const settled = p.then(
    (value) => ({ settled: true, value }),
    (error: unknown) => ({ settled: true, error }),
  )
  try {
    return await Promise.race([settled, timeout])
  } finally {
    clearTimeout(timer)
  }
}

/** Sessions on `database` of any login of the tenant whose owner role is `owner`. */
async function sessionsOf(h: Harness, database: string, owner: string): Promise<string[]> {
  const like = `${owner.replace(/_/g, '\\_')}-%`
  const r = await h.cluster.query<{ usename: string }>('SELECT usename FROM pg_stat_activity WHERE datname = $1 AND usename LIKE $2', [database, like])
  return r.rows.map((row) => row.usename)
}

async function rolesOf(h: Harness, owner: string): Promise<string[]> {
  const r = await h.cluster.query<{ rolname: string }>('SELECT rolname FROM pg_roles WHERE rolname = $1 OR rolname LIKE $2 ORDER BY 1', [
    owner,
    `${owner.replace(/_/g, '\\_')}-%`,
  ])
  return r.rows.map((row) => row.rolname)
}

/** A session of `c` that takes its own pg_authid row and keeps the transaction open. */
async function holdOwnRoleRow(c: Creds): Promise<pg.Client> {
  const s = await loginAs(c)
  await s.query('SET ROLE NONE') // act as the lease itself: a role may change its own password
  await s.query('BEGIN')
  await s.query(`ALTER ROLE ${quoteIdent(c.username)} PASSWORD 'mine'`)
  return s
}

t.test('a hostile tenant racing Landlord', async (t) => {
  const h = await setup(t, { JOB_ATTEMPTS: '1' })
  let workers = await h.startWorkers()
  const spy = await onboard(h, 'spy')
  const spyCreds = await credentials(h, 'spy')

  t.test("another tenant's login gets no session in a database being provisioned", async (t) => {
    // The spy polls for databases open to PUBLIC and connects: a new database is,
    // from CREATE DATABASE until secureDatabase's REVOKE, and a session opened
    // then survives the REVOKE.
    const watch = await loginAs(spyCreds)
    t.teardown(() => watch.end().catch(() => {}))
    const got: pg.Client[] = []
    t.teardown(() => Promise.all(got.map((c) => c.end().catch(() => {}))))
    let victim: Awaited<ReturnType<typeof onboard>> | undefined
    for (let round = 0; round < 5 && got.length === 0; round++) {
      let stop = false
      let inflight = false
      const watcher = (async () => {
        while (!stop) {
          const r = await watch.query<{ datname: string }>(
            "SELECT datname FROM pg_database WHERE datallowconn AND has_database_privilege('public', oid, 'CONNECT') AND datname LIKE $1",
            [`${h.config.tenantDbPrefix.replace(/_/g, '\\_')}%`],
          )
          for (const { datname } of r.rows) {
            if (inflight || got.length >= 1) continue
            inflight = true
            await loginAs(spyCreds, datname).then((c) => got.push(c), () => {})
            inflight = false
          }
        }
      })()
      victim = await onboard(h, `fresh${round}`)
      stop = true
      await watcher
    }
    const intruders = await sessionsOf(h, victim!.database_name, spy.owner_role)
    t.same(intruders, [], `no session of tenant spy in ${victim!.database_name}`)
    t.same(got.length, 0, 'the spy never got a session in, at any moment of provisioning')
  })

  t.test('a lease holding its own role row cannot stall rotation, nor starve other tenants of credentials', async (t) => {
    await onboard(h, 'stall')
    await onboard(h, 'bystander')
    const lease = await credentials(h, 'stall')
    const held = await holdOwnRoleRow(lease)
    let pending: Promise<unknown> | undefined
    try {
      // Each rotation blocks on ALTER ROLE ... NOLOGIN with no timeout, pinning one
      // of the admin pool's 4 connections (shared with credential issuance).
      for (let i = 0; i < 4; i++) {
        const res = await h.app.inject({ method: 'POST', url: '/tenants/stall/rotate-credentials', headers: auth })
        t.equal(res.statusCode, 202)
      }
      const revoked = await within(
        waitFor(async () => ((await h.cluster.query('SELECT 1 FROM pg_roles WHERE rolname = $1 AND rolcanlogin', [lease.username])).rowCount ? undefined : true), 4000),
        5000,
      )
      t.ok(revoked.settled && !revoked.error, 'the rotation revoked the lease despite its open transaction')
      pending = credentials(h, 'bystander')
      const other = await within(pending, 4000)
      t.ok(other.settled && !other.error, "another tenant's credentials are still issued")
    } finally {
      await held.end().catch(() => {})
      await pending?.catch(() => {})
      await waitFor(async () => ((await rolesOf(h, lease.username)).length === 0 ? true : undefined), 15_000)
    }
  })

  t.test('a lease holding its own role row cannot stall its wipe', async (t) => {
    await onboard(h, 'sticky')
    const held = await holdOwnRoleRow(await credentials(h, 'sticky'))
    try {
      t.equal((await h.app.inject({ method: 'DELETE', url: '/tenants/sticky?retention=PT0S', headers: auth })).statusCode, 202)
      const wiped = await within(h.waitForState('sticky', 'wiped', 6000), 7000)
      t.ok(wiped.settled && !wiped.error, 'the wipe finished while the lease kept its transaction open')
    } finally {
      await held.end().catch(() => {})
      await h.waitForState('sticky', 'wiped')
    }
  })

  t.test("another tenant cannot grant anything to this tenant's roles", async (t) => {
    const grantee = await onboard(h, 'grantee')
    await onboard(h, 'granter')
    const granteeLease = await credentials(h, 'grantee')
    const s = await loginAs(await credentials(h, 'granter'))
    t.teardown(() => s.end().catch(() => {}))
    await s.query('CREATE TABLE shared_bait (x int)')
    for (const sql of [
      `GRANT SELECT ON shared_bait TO ${quoteIdent(grantee.owner_role)}`,
      `GRANT SELECT ON shared_bait TO ${quoteIdent(granteeLease.username)}`,
      `CREATE POLICY p ON shared_bait TO ${quoteIdent(grantee.owner_role)} USING (true)`,
      `ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO ${quoteIdent(grantee.owner_role)}`,
      `GRANT USAGE ON SCHEMA public TO ${quoteIdent(grantee.owner_role)}`,
    ]) {
      t.match(await s.query(sql).then(() => undefined, (err: unknown) => err), { code: '42501' }, sql)
    }
    await s.query('GRANT SELECT ON shared_bait TO PUBLIC')
    const acl = await s.query("SELECT relacl::text AS acl FROM pg_class WHERE relname = 'shared_bait'")
    t.match(acl.rows[0].acl, /(^|[{,])=r\//, 'a grant to PUBLIC, within the tenant, still works')
    t.notMatch(acl.rows[0].acl, new RegExp(grantee.owner_role), "and none of the refused grants is in the ACL")
    t.match(await s.query('DROP EVENT TRIGGER landlord_tenant_roles_only').then(() => undefined, (err: unknown) => err), { code: '42501' }, 'the guard cannot be dropped')
    t.match(await s.query('ALTER EVENT TRIGGER landlord_tenant_roles_only DISABLE').then(() => undefined, (err: unknown) => err), { code: '42501' }, 'nor disabled')
  })

  t.test('a grant to its role left in another, fenced database does not make its wipe fail', async (t) => {
    // As made before the guard existed: by an admin, with the guard off for a moment.
    const grantee = await onboard(h, 'oldgrant')
    const granter = await onboard(h, 'oldgranter')
    await plantForeignGrant(h, granter.database_name, 'old_bait', grantee.owner_role)
    t.equal((await h.app.inject({ method: 'PATCH', url: '/tenants/oldgranter/suspend', headers: auth, payload: {} })).statusCode, 202)
    await h.waitForState('oldgranter', 'suspended')
    t.equal((await h.app.inject({ method: 'DELETE', url: '/tenants/oldgrant?retention=PT0S', headers: auth })).statusCode, 202)
    const wiped = await h.waitForState('oldgrant', 'wiped')
    const receipt = await h.db.selectFrom('tenant_events').select('data').where('tenant_id', '=', wiped.id).where('type', '=', 'WIPE_RECEIPT').executeTakeFirstOrThrow()
    t.match(receipt.data, {
      database: { dropped: true },
      key_material: 'destroyed',
      roles_left: [{ role: grantee.owner_role, reason: new RegExp(`objects in ${granter.database_name} still depend on it`) }],
    })
    t.equal((receipt.data as { roles_left: unknown[] }).roles_left.length, 1, 'only that role is left')
    t.notOk((receipt.data as { roles_dropped: string[] }).roles_dropped.includes(grantee.owner_role), 'the receipt does not claim the role was dropped')
    const left = await h.cluster.query('SELECT rolcanlogin FROM pg_roles WHERE rolname = $1', [grantee.owner_role])
    t.same(left.rows, [{ rolcanlogin: false }], 'the role left behind cannot log in')
  })

  t.test('a lock on a catalog row the wipe needs makes it fail and retry, never hang', async (t) => {
    const target = await onboard(h, 'target')
    const holder = await onboard(h, 'holder')
    // An old grant in another database that DROP OWNED BY <target> must revoke there.
    await plantForeignGrant(h, holder.database_name, 'bait', target.owner_role)
    // The holder tenant cannot take that row's lock: any DDL of its own is refused while the grant is there.
    const lease = await loginAs(await credentials(h, 'holder'))
    await lease.query('BEGIN')
    t.match(await lease.query('GRANT SELECT ON bait TO PUBLIC').then(() => undefined, (err: unknown) => err), { code: /42501/ })
    await lease.end()
    // A session that can (an admin's, here) holds bait's pg_class row in an open transaction.
    const url = new URL(h.config.tenantClusterUrl)
    url.pathname = `/${holder.database_name}`
    const locker = new pg.Client({ connectionString: url.toString() })
    await locker.connect()
    await locker.query('BEGIN')
    await locker.query('ALTER EVENT TRIGGER landlord_tenant_roles_only DISABLE')
    await locker.query(`GRANT UPDATE ON bait TO ${quoteIdent(holder.owner_role)}`)
    try {
      t.equal((await h.app.inject({ method: 'DELETE', url: '/tenants/target?retention=PT0S', headers: auth })).statusCode, 202)
      const failed = await h.waitForState('target', 'failed', 60_000)
      t.match(failed.error, /lock timeout/, 'the attempts gave up on the lock instead of waiting forever')
    } finally {
      await locker.query('ROLLBACK').catch(() => {})
      await locker.end().catch(() => {})
    }
    t.equal((await h.app.inject({ method: 'POST', url: '/tenants/target/retry', headers: auth })).statusCode, 202)
    await h.waitForState('target', 'wiped')
    t.same(await rolesOf(h, target.owner_role), [], 'once the lock is gone, the retried wipe drops every role')
  })

  t.test('a crash right after CREATE DATABASE leaves the new database closed to other tenants', async (t) => {
    // The worker dies after provision's first statement on the database
    // (ensureDatabase's CREATE DATABASE), before secureDatabase: simulated by
    // stopping the workers and running what they had run.
    await workers.stop()
    const res = await h.app.inject({ method: 'POST', url: '/tenants', headers: auth, payload: { slug: 'crashed' } })
    t.equal(res.statusCode, 202)
    const tenant = res.json<{ id: string }>()
    const name = `${h.config.tenantDbPrefix}crashed`
    await ensureRole(h.cluster, name, tenantMarker(tenant.id))
    await h.cluster.query(`CREATE DATABASE ${quoteIdent(name)} OWNER ${quoteIdent(name)} TEMPLATE template0`)
    // Until a worker picks the job up again, any tenant's login can connect.
    const intruder = await loginAs(spyCreds, name).catch(() => undefined)
    t.ok(intruder, 'the database this crash left was open to any login')
    t.teardown(() => intruder?.end().catch(() => {}))
    workers = await h.startWorkers()
    await h.waitForState('crashed', 'active')
    t.same(await sessionsOf(h, name, spy.owner_role), [], 'no session of tenant spy in the database once it is provisioned')
    await t.rejects(intruder!.query('SELECT 1'), "the intruder's session was ended")
  })
})

/**
 * A table in `database` with SELECT granted to `role` of another tenant, as
 * an admin made it before the guard existed (the guard off for a moment).
 */
async function plantForeignGrant(h: Harness, database: string, table: string, role: string): Promise<void> {
  await withAdmin(h, database, async (c) => {
    await c.query(`CREATE TABLE ${quoteIdent(table)} (x int)`)
    await c.query('ALTER EVENT TRIGGER landlord_tenant_roles_only DISABLE')
    await c.query(`GRANT SELECT ON ${quoteIdent(table)} TO ${quoteIdent(role)}`)
    await c.query('ALTER EVENT TRIGGER landlord_tenant_roles_only ENABLE')
  })
}

async function withAdmin<T>(h: Harness, database: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const url = new URL(h.config.tenantClusterUrl)
  url.pathname = `/${database}`
  const c = new pg.Client({ connectionString: url.toString() })
  await c.connect()
  try {
    return await fn(c)
  } finally {
    await c.end()
  }
}
