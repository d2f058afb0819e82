// The local secrets backend against real provisioned tenants: leases are real
// login roles that act as the tenant's owner, only on its own database, and
// revocation, expiry and key destruction really take them away.
import pg from 'pg'
import t from 'tap'
import type { Tenant } from '../../src/db/schema.js'
import { findTenant } from '../../src/db/tenants.js'
import type { IssuedCredentials } from '../../src/secrets/backend.js'
import { auth, setup, waitFor, type Harness } from '../helpers.js'

const HOUR = 3_600_000

async function provisioned(h: Harness, slug: string): Promise<Tenant> {
  const res = await h.app.inject({ method: 'POST', url: '/tenants', headers: auth, payload: { slug } })
  if (res.statusCode !== 202) throw new Error(`POST /tenants ${slug}: ${res.statusCode} ${res.body}`)
  await h.waitForState(slug, 'active')
  const tenant = await findTenant(h.db, slug)
  if (!tenant) throw new Error(`tenant ${slug} not found`)
  return tenant
}

/** A session opened with the lease's own user and password, as a tenant application would. */
async function connectWith(h: Harness, creds: IssuedCredentials, database: string): Promise<pg.Client> {
  const url = new URL(h.config.tenantClusterUrl)
  const client = new pg.Client({
    host: url.hostname,
    port: Number(url.port || 5432),
    user: creds.username,
    password: creds.password,
    database,
  })
  // A session ended by the server emits 'error' while idle; the tests look at the next query instead.
  client.on('error', () => {})
  await client.connect()
  return client
}

async function connectError(h: Harness, creds: IssuedCredentials, database: string): Promise<unknown> {
  try {
    const client = await connectWith(h, creds, database)
    await client.end()
    return undefined
  } catch (err) {
    return err
  }
}

async function role(h: Harness, name: string) {
  const r = await h.cluster.query<{ rolcanlogin: boolean; rolvaliduntil: Date | null; rolpassword: string | null }>(
    'SELECT rolcanlogin, rolvaliduntil, rolpassword FROM pg_authid WHERE rolname = $1',
    [name],
  )
  return r.rows[0]
}

/** True when the role is gone, or at least can no longer log in. */
async function roleRevoked(h: Harness, name: string): Promise<boolean> {
  const r = await role(h, name)
  return r === undefined || !r.rolcanlogin
}

async function lease(h: Harness, id: string) {
  return h.db.selectFrom('leases').selectAll().where('id', '=', id).executeTakeFirstOrThrow()
}

async function liveLeases(h: Harness, tenant: Tenant): Promise<number> {
  const r = await h.db
    .selectFrom('leases')
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .where('tenant_id', '=', tenant.id)
    .where('revoked_at', 'is', null)
    .executeTakeFirstOrThrow()
  return Number(r.n)
}

t.test('the local secrets backend', async (t) => {
  const h = await setup(t)
  await h.startWorkers()
  const acme = await provisioned(h, 'acme')
  const globex = await provisioned(h, 'globex')
  const sessions: pg.Client[] = []
  t.teardown(async () => {
    for (const client of sessions) await client.end().catch(() => {})
  })
  async function session(creds: IssuedCredentials, database: string): Promise<pg.Client> {
    const client = await connectWith(h, creds, database)
    sessions.push(client)
    return client
  }

  t.test('issue returns a login role of the owner, valid until expires_at, with only a SCRAM verifier stored', async (t) => {
    const before = Date.now()
    const creds = await h.secrets.issue(acme, { principal: 'alice', ttlMs: HOUR })
    const after = Date.now()
    t.ok(creds.username.startsWith(`${acme.owner_role}-`), `${creds.username} starts with ${acme.owner_role}-`)
    t.match(creds.username, /-[0-9a-f]{12}$/, 'then 12 hex digits of the lease id')
    t.type(creds.password, 'string')
    t.ok(creds.password.length >= 24, 'a long random password')
    // expires_at is rounded down to whole seconds so that VALID UNTIL can equal it exactly.
    t.ok(creds.expires_at.getTime() > before + HOUR - 1000, 'expires_at is about now + ttl (not earlier)')
    t.ok(creds.expires_at.getTime() <= after + HOUR, 'expires_at is about now + ttl (not later)')

    const r = await role(h, creds.username)
    t.ok(r, 'the role exists')
    t.equal(r?.rolcanlogin, true, 'it can log in')
    t.equal(r?.rolvaliduntil?.getTime(), creds.expires_at.getTime(), 'VALID UNTIL equals expires_at')
    t.match(r?.rolpassword, /^SCRAM-SHA-256\$/, 'pg_authid holds a SCRAM verifier')
    t.notOk(r?.rolpassword?.includes(creds.password), 'not the password itself')
    const member = await h.cluster.query('SELECT pg_has_role($1, $2, $3) AS yes', [creds.username, acme.owner_role, 'MEMBER'])
    t.equal(member.rows[0].yes, true, 'the role is a member of the owner role')

    const row = await lease(h, creds.lease_id)
    t.match(row, { tenant_id: acme.id, backend: 'local', username: creds.username, principal: 'alice', revoked_at: null })
    t.equal(row.expires_at.getTime(), creds.expires_at.getTime())
    t.ok(Buffer.isBuffer(row.secret) && row.secret.length > 0, 'the row keeps an encrypted secret')
    const needle = Buffer.from(creds.password)
    for (const [column, value] of Object.entries(row)) {
      const found = Buffer.isBuffer(value) ? value.includes(needle) : String(value).includes(creds.password)
      t.notOk(found, `the password is not in leases.${column}`)
    }
  })

  t.test('the credentials open a session on the tenant database that acts as the owner', async (t) => {
    const creds = await h.secrets.issue(acme, { principal: 'alice', ttlMs: HOUR })
    const client = await session(creds, acme.database_name)
    // The cluster trusts 127.0.0.1, so what proves the lease role is the session user, and `ALTER ROLE ... SET role` the current one.
    const who = await client.query('SELECT session_user AS session, current_user AS current, current_database() AS db')
    t.same(who.rows[0], { session: creds.username, current: acme.owner_role, db: acme.database_name })
    const users = await client.query('SELECT count(*)::int AS n FROM users')
    t.equal(users.rows[0].n, 0, 'can read the tenant tables')
    await client.query('CREATE TABLE made_by_lease (id int)')
    const owner = await client.query(`SELECT tableowner FROM pg_tables WHERE schemaname = 'public' AND tablename = 'made_by_lease'`)
    t.same(owner.rows, [{ tableowner: acme.owner_role }], 'a new table belongs to the owner, not to the lease role')
    await client.query('DROP TABLE made_by_lease')
  })

  t.test("the same credentials cannot open a session on another tenant's database", async (t) => {
    const creds = await h.secrets.issue(acme, { principal: 'alice', ttlMs: HOUR })
    const err = await connectError(h, creds, globex.database_name)
    t.match(err, { code: '42501', message: /permission denied for database/ })
    const own = await h.secrets.issue(globex, { principal: 'alice', ttlMs: HOUR })
    t.equal(await connectError(h, own, globex.database_name), undefined, "globex's own lease does connect (the probe works)")
    t.match(await connectError(h, own, acme.database_name), { code: '42501' }, 'and not the other way round either')
  })

  t.test('the same idempotency key and principal replay the same lease; anything else gets a new one', async (t) => {
    const first = await h.secrets.issue(acme, { principal: 'alice', ttlMs: HOUR, idempotencyKey: 'k1' })
    const again = await h.secrets.issue(acme, { principal: 'alice', ttlMs: HOUR, idempotencyKey: 'k1' })
    t.same(again, first, 'same lease_id, username, password and expiry')
    const rows = await h.db.selectFrom('leases').select('id').where('idempotency_key', '=', 'k1').execute()
    t.same(rows, [{ id: first.lease_id }], 'one lease row')

    const other = await h.secrets.issue(acme, { principal: 'alice', ttlMs: HOUR, idempotencyKey: 'k2' })
    t.not(other.lease_id, first.lease_id, 'another key: another lease')
    t.not(other.username, first.username)
    t.not(other.password, first.password)

    const bob = await h.secrets.issue(acme, { principal: 'bob', ttlMs: HOUR, idempotencyKey: 'k1' })
    t.not(bob.lease_id, first.lease_id, "another principal with alice's key does not get alice's lease")
    t.not(bob.password, first.password)

    const elsewhere = await h.secrets.issue(globex, { principal: 'alice', ttlMs: HOUR, idempotencyKey: 'k1' })
    t.not(elsewhere.lease_id, first.lease_id, 'the same key on another tenant is another lease')
    t.ok(elsewhere.username.startsWith(`${globex.owner_role}-`))
  })

  t.test('requests racing with one idempotency key all get the one lease', async (t) => {
    const results = await Promise.allSettled(
      Array.from({ length: 4 }, () => h.secrets.issue(acme, { principal: 'carol', ttlMs: HOUR, idempotencyKey: 'race' })),
    )
    const rejected = results.flatMap((r) => (r.status === 'rejected' ? [String((r.reason as { code?: string }).code ?? r.reason)] : []))
    t.same(rejected, [], `no request fails (rejected: ${rejected.join(', ') || 'none'})`)
    const ids = new Set(results.flatMap((r) => (r.status === 'fulfilled' ? [r.value.lease_id] : [])))
    t.equal(ids.size, 1, 'one lease for one key')
    const rows = await h.db.selectFrom('leases').select('username').where('idempotency_key', '=', 'race').execute()
    t.equal(rows.length, 1, 'one lease row')
    const roles = await h.cluster.query('SELECT rolname FROM pg_roles WHERE rolname LIKE $1', [`${acme.owner_role}-%`])
    const live = await h.db.selectFrom('leases').select('username').where('tenant_id', '=', acme.id).where('revoked_at', 'is', null).execute()
    t.same(roles.rows.map((r) => r.rolname).sort(), live.map((l) => l.username).sort(), 'no role without a live lease row')
  })

  t.test('revokeAll with issuedBefore revokes only the leases issued by then', async (t) => {
    t.equal(await h.secrets.revokeAll(acme, { issuedBefore: new Date(Date.now() - HOUR) }), 0, 'an hour ago: nothing')
    const old = await h.secrets.issue(acme, { principal: 'alice', ttlMs: HOUR })
    const cutoff = new Date()
    const live = await liveLeases(h, acme)
    await waitFor(async () => (Date.now() > cutoff.getTime() + 1 ? true : undefined), 1000)
    const recent = await h.secrets.issue(acme, { principal: 'alice', ttlMs: HOUR })
    t.equal(await h.secrets.revokeAll(acme, { issuedBefore: cutoff }), live, 'every lease issued before the cutoff')
    t.ok(await roleRevoked(h, old.username), 'an older lease is revoked')
    t.equal((await role(h, recent.username))?.rolcanlogin, true, 'a newer lease still logs in')
    t.equal((await lease(h, recent.lease_id)).revoked_at, null, 'and its row is not revoked')
    t.equal(await liveLeases(h, acme), 1, 'it is the only live lease left')
  })

  t.test('revokeAll ends every live lease: roles dropped and open sessions terminated', async (t) => {
    const creds = await h.secrets.issue(acme, { principal: 'alice', ttlMs: HOUR })
    const client = await session(creds, acme.database_name)
    t.same((await client.query('SELECT 1 AS one')).rows, [{ one: 1 }], 'the session works before')
    const bystander = await h.secrets.issue(globex, { principal: 'alice', ttlMs: HOUR })
    const bystanderSession = await session(bystander, globex.database_name)
    const usernames = (
      await h.db.selectFrom('leases').select('username').where('tenant_id', '=', acme.id).where('revoked_at', 'is', null).execute()
    ).map((l) => l.username)
    t.ok(usernames.length >= 2, 'several live leases')

    t.equal(await h.secrets.revokeAll(acme), usernames.length, 'returns how many it revoked')
    for (const name of usernames) t.ok(await roleRevoked(h, name), `${name} is gone or NOLOGIN`)
    const gone = await h.cluster.query('SELECT rolname FROM pg_roles WHERE rolname = ANY($1)', [usernames])
    t.same(gone.rows, [], 'the roles were dropped (they own nothing)')
    await t.rejects(client.query('SELECT 1'), 'the open session is ended')
    await waitFor(
      async () => ((await h.cluster.query('SELECT 1 FROM pg_stat_activity WHERE usename = ANY($1)', [usernames])).rowCount ? undefined : true),
      5000,
      () => 'the revoked sessions to leave pg_stat_activity',
    )
    t.match(await connectError(h, creds, acme.database_name), { code: '28000' }, 'the credentials no longer log in')
    const rows = await h.db.selectFrom('leases').select(['revoked_at']).where('username', '=', creds.username).execute()
    t.ok(rows[0]?.revoked_at instanceof Date, 'the lease row records revoked_at')
    t.equal(await liveLeases(h, acme), 0)
    t.equal(await h.secrets.revokeAll(acme), 0, 'a second revokeAll finds nothing')

    t.same((await bystanderSession.query('SELECT 1 AS one')).rows, [{ one: 1 }], "another tenant's session is untouched")
    t.equal((await role(h, bystander.username))?.rolcanlogin, true, "another tenant's lease still logs in")
  })

  t.test('after its lease is revoked, the same idempotency key issues a fresh lease', async (t) => {
    const spent = await h.db
      .selectFrom('leases')
      .select(['id', 'revoked_at'])
      .where('tenant_id', '=', acme.id)
      .where('principal', '=', 'alice')
      .where('idempotency_key', '=', 'k1')
      .executeTakeFirstOrThrow()
    t.ok(spent.revoked_at instanceof Date, 'the lease of k1 was revoked above')
    const fresh = await h.secrets.issue(acme, { principal: 'alice', ttlMs: HOUR, idempotencyKey: 'k1' })
    t.not(fresh.lease_id, spent.id, 'a new lease, not the revoked one')
    t.equal(await connectError(h, fresh, acme.database_name), undefined, 'and it logs in')
    t.same(await h.secrets.issue(acme, { principal: 'alice', ttlMs: HOUR, idempotencyKey: 'k1' }), fresh, 'the key now replays the new lease')
  })

  t.test('reapExpired revokes the leases past their expiry, and only those', async (t) => {
    const short = await h.secrets.issue(acme, { principal: 'alice', ttlMs: 1000 })
    const long = await h.secrets.issue(acme, { principal: 'alice', ttlMs: HOUR })
    t.equal(await h.secrets.reapExpired(), 0, 'nothing is due yet')
    await waitFor(async () => (Date.now() > short.expires_at.getTime() ? true : undefined), 5000, () => 'the short lease to expire')
    t.equal(await h.secrets.reapExpired(), 1)
    t.equal(await role(h, short.username), undefined, 'the expired role is gone')
    t.ok((await lease(h, short.lease_id)).revoked_at instanceof Date, 'its row has revoked_at')
    t.equal((await role(h, long.username))?.rolcanlogin, true, 'the live lease is untouched')
    t.equal((await lease(h, long.lease_id)).revoked_at, null, 'and its row is not revoked')
    t.equal(await h.secrets.reapExpired(), 0, 'a second pass finds nothing')
  })

  t.test('destroy revokes the leases and destroys the data key for good', async (t) => {
    await h.secrets.issue(acme, { principal: 'alice', ttlMs: HOUR, idempotencyKey: 'before-wipe' })
    const live = await liveLeases(h, acme)
    t.ok(live >= 2)
    const usernames = (await h.db.selectFrom('leases').select('username').where('tenant_id', '=', acme.id).execute()).map((l) => l.username)

    t.same(await h.secrets.destroy(acme), { leases_revoked: live, key_destroyed: true })
    const key = await h.db.selectFrom('tenant_keys').selectAll().where('tenant_id', '=', acme.id).executeTakeFirstOrThrow()
    t.equal(key.wrapped_key, null, 'tenant_keys.wrapped_key is null')
    t.ok(key.destroyed_at instanceof Date, 'destroyed_at is set')
    const secrets = await h.db.selectFrom('leases').select(['secret', 'revoked_at']).where('tenant_id', '=', acme.id).execute()
    t.ok(secrets.length > 0)
    t.ok(secrets.every((l) => l.secret === null), "every lease's secret is null")
    t.ok(secrets.every((l) => l.revoked_at !== null), 'every lease is revoked')
    for (const name of usernames) t.ok(await roleRevoked(h, name), `${name} no longer logs in`)

    await t.rejects(h.secrets.issue(acme, { principal: 'alice', ttlMs: HOUR }), /data key .* was destroyed/, 'a new lease is refused')
    await t.rejects(
      h.secrets.issue(acme, { principal: 'alice', ttlMs: HOUR, idempotencyKey: 'before-wipe' }),
      /data key .* was destroyed/,
      'so is an idempotent replay',
    )
    t.equal(await liveLeases(h, acme), 0, 'the refused requests created no lease')
    t.same(await h.secrets.destroy(acme), { leases_revoked: 0, key_destroyed: false }, 'a second destroy has nothing left to do')

    const other = await h.db.selectFrom('tenant_keys').select('wrapped_key').where('tenant_id', '=', globex.id).executeTakeFirstOrThrow()
    t.ok(other.wrapped_key, "another tenant's key is intact")
    const fresh = await h.secrets.issue(globex, { principal: 'alice', ttlMs: HOUR })
    t.equal(await connectError(h, fresh, globex.database_name), undefined, 'and it still issues working credentials')
  })
})
