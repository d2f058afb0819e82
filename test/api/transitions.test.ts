// Every lifecycle event through HTTP, checked with a real pg client against
// the tenant database: credentials work exactly when the state says they do.
import { PassThrough } from 'node:stream'
import pg from 'pg'
import t from 'tap'
import { expireRetention } from '../../src/jobs/maintenance.js'
import { quoteIdent } from '../../src/tenancy/identifiers.js'
import { auth, setup, type Creds } from '../helpers.js'

async function tryConnect(c: Creds, database = c.database): Promise<{ code?: string; message: string } | undefined> {
  const client = new pg.Client({ host: c.host, port: c.port, user: c.username, password: c.password, database })
  try {
    await client.connect()
    await client.query('SELECT count(*) FROM users')
    return undefined
  } catch (err) {
    return err as { code?: string; message: string }
  } finally {
    await client.end().catch(() => {})
  }
}

/** A login refused by Postgres itself: the role is gone (28000) or the database closed (55000), not a network error. */
const REFUSED = { code: /^(28000|55000)$/ }

t.test('lifecycle with real effects', async (t) => {
  const logs = new PassThrough()
  let logText = ''
  logs.on('data', (d: Buffer) => (logText += d.toString()))
  const h = await setup(t, {}, logs)
  const { app, db } = h
  await h.startWorkers()
  const responses: string[] = []
  const call = async (method: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE', url: string, payload?: object) => {
    const res = await app.inject({ method, url, headers: auth, ...(payload ? { payload } : {}) })
    responses.push(res.body)
    return res
  }
  const credentials = async (slug: string): Promise<Creds> => {
    const res = await app.inject({ method: 'POST', url: `/tenants/${slug}/credentials`, headers: auth })
    t.equal(res.statusCode, 201, `credentials for ${slug}`)
    t.equal(res.headers['cache-control'], 'no-store')
    return res.json()
  }
  const onboard = async (slug: string) => {
    t.equal((await call('POST', '/tenants', { slug })).statusCode, 202)
    return h.waitForState(slug, 'active')
  }
  const issued: Creds[] = []

  await onboard('acme')
  await onboard('globex')

  t.test('credentials connect to their own tenant database, never to another', async (t) => {
    const c = await credentials('acme')
    issued.push(c)
    t.match(c, { username: new RegExp(`^${h.config.tenantDbPrefix}acme-[0-9a-z]{12}$`), database: `${h.config.tenantDbPrefix}acme`, port: 5432 })
    const ttl = Date.parse(c.expires_at) - Date.now()
    t.ok(ttl > 3500_000 && ttl <= 3600_000, 'valid for the configured hour')
    t.equal(await tryConnect(c), undefined, 'connects and reads the tenant schema')
    t.match(await tryConnect(c, `${h.config.tenantDbPrefix}globex`), { code: '42501' }, "refused by globex's database")
    const other = await credentials('globex')
    issued.push(other)
    t.match(await tryConnect(other, c.database), { code: '42501' }, "globex's login is refused by acme's database")
  })

  t.test('suspend: the database refuses the same credentials and open sessions end; resume brings logins back', async (t) => {
    const c = await credentials('acme')
    issued.push(c)
    const session = new pg.Client({ host: c.host, port: c.port, user: c.username, password: c.password, database: c.database })
    session.on('error', () => {})
    await session.connect()
    const res = await call('PATCH', '/tenants/acme/suspend', { reason: 'unpaid invoice' })
    t.equal(res.statusCode, 202)
    t.match(res.json(), { state: 'suspending', stable: false })
    await h.waitForState('acme', 'suspended')
    await t.rejects(session.query('SELECT 1'), 'the open session was ended')
    await session.end().catch(() => {})
    t.match(await tryConnect(c), REFUSED, 'the same credentials fail')
    const db2 = await h.cluster.query('SELECT datallowconn FROM pg_database WHERE datname = $1', [c.database])
    t.equal(db2.rows[0].datallowconn, false)
    const locked = await call('POST', '/tenants/acme/credentials')
    t.equal(locked.statusCode, 423)
    t.equal(locked.json().code, 'LANDLORD_TENANT_LOCKED')
    const events = (await call('GET', '/tenants/acme/events')).json().items
    t.match(events.find((e: { type: string }) => e.type === 'SUSPEND'), { data: { reason: 'unpaid invoice' } })

    t.equal((await call('PATCH', '/tenants/acme/resume')).statusCode, 202)
    await h.waitForState('acme', 'active')
    t.match(await tryConnect(c), REFUSED, 'revoked credentials stay revoked')
    const fresh = await credentials('acme')
    issued.push(fresh)
    t.equal(await tryConnect(fresh), undefined, 'new credentials connect')
  })

  t.test('a refused transition is a 409 listing the allowed events', async (t) => {
    const res = await call('PATCH', '/tenants/acme/resume')
    t.equal(res.statusCode, 409)
    t.match(res.headers['content-type'], /problem\+json/)
    t.match(res.json(), { code: 'LANDLORD_TRANSITION_NOT_ALLOWED', state: 'active', allowed_events: ['SUSPEND', 'HIBERNATE', 'DECOMMISSION'] })
    const unknown = await call('PATCH', '/tenants/acme/suspend', { reason: 'x', force: true })
    t.equal(unknown.statusCode, 400)
    t.equal((await h.waitForState('acme', 'active')).state, 'active', 'nothing changed')
  })

  t.test('hibernate releases logins; a credential request wakes the tenant transparently', async (t) => {
    const before = await credentials('acme')
    issued.push(before)
    t.equal((await call('PATCH', '/tenants/acme/hibernate')).statusCode, 202)
    await h.waitForState('acme', 'hibernated')
    t.match(await tryConnect(before), REFUSED, 'logins are refused while hibernated')
    const conn = await call('GET', '/tenants/acme/connection')
    t.match(conn.json(), { state: 'hibernated', accepts_connections: false })
    const woken = await credentials('acme')
    issued.push(woken)
    t.equal(await tryConnect(woken), undefined, 'the answer came once the tenant could connect')
    const row = await db.selectFrom('tenants').select('state').where('slug', '=', 'acme').executeTakeFirstOrThrow()
    t.equal(row.state, 'active')
    const types = (await call('GET', '/tenants/acme/events')).json().items.map((e: { type: string }) => e.type)
    t.ok(types.includes('WAKE'), 'the wake is in the history')
  })

  t.test('rotate-credentials revokes every live lease and ends their sessions', async (t) => {
    const a = await credentials('acme')
    const b = await credentials('acme')
    issued.push(a, b)
    const session = new pg.Client({ host: a.host, port: a.port, user: a.username, password: a.password, database: a.database })
    session.on('error', () => {})
    await session.connect()
    const res = await call('POST', '/tenants/acme/rotate-credentials')
    t.equal(res.statusCode, 202)
    const live = async () =>
      (await db.selectFrom('leases').select('id').where('tenant_id', '=', res.json().id).where('revoked_at', 'is', null).execute()).length
    const deadline = Date.now() + 10_000
    while ((await live()) > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25))
    t.equal(await live(), 0, 'no live lease left')
    t.match(await tryConnect(a), REFUSED)
    t.match(await tryConnect(b), REFUSED)
    await t.rejects(session.query('SELECT 1'), 'the session was ended')
    await session.end().catch(() => {})
    const events = (await call('GET', '/tenants/acme/events')).json().items
    t.ok(events.some((e: { type: string }) => e.type === 'CREDENTIALS_ROTATED'))
    const hook = await db.selectFrom('outbox').select('name').where('name', '=', 'tenant.credentials_rotated').execute()
    t.equal(hook.length, 1, 'billing hears about it')
    const after = await credentials('acme')
    issued.push(after)
    t.equal(await tryConnect(after), undefined, 'new credentials work after the rotation')
  })

  t.test('decommission keeps the data but refuses connections; restore brings it back within retention', async (t) => {
    const c = await credentials('acme')
    issued.push(c)
    await h.cluster.query('SELECT 1') // the cluster pool is alive for the checks below
    const bad = await call('DELETE', '/tenants/acme?retention=7%20days')
    t.equal(bad.statusCode, 400)
    t.equal(bad.json().code, 'LANDLORD_INVALID_RETENTION')
    t.equal((await call('DELETE', '/tenants/acme?retention=P1M')).statusCode, 400, 'months are ambiguous: refused')
    t.equal((await h.waitForState('acme', 'active')).state, 'active', 'bad input changed nothing')

    const res = await call('DELETE', '/tenants/acme?retention=P2D')
    t.equal(res.statusCode, 202)
    const gone = await h.waitForState('acme', 'decommissioned')
    const expected = Date.now() + 2 * 86_400_000
    t.ok(Math.abs(gone.wipe_after!.getTime() - expected) < 60_000, 'wipe_after is two days out')
    t.match(await tryConnect(c), REFUSED, 'connections are refused')
    t.equal((await call('POST', '/tenants/acme/credentials')).statusCode, 423)
    const exists = await h.cluster.query('SELECT 1 FROM pg_database WHERE datname = $1', [c.database])
    t.equal(exists.rowCount, 1, 'the data is kept')

    t.equal((await call('POST', '/tenants/acme/restore')).statusCode, 202)
    const back = await h.waitForState('acme', 'active')
    t.equal(back.wipe_after, null)
    const fresh = await credentials('acme')
    issued.push(fresh)
    t.equal(await tryConnect(fresh), undefined)
  })

  t.test('restore after the retention ran out is refused', async (t) => {
    await onboard('late')
    await call('DELETE', '/tenants/late?retention=P1D')
    await h.waitForState('late', 'decommissioned')
    await db.updateTable('tenants').set({ wipe_after: new Date(Date.now() - 1000) }).where('slug', '=', 'late').execute()
    const res = await call('POST', '/tenants/late/restore')
    t.equal(res.statusCode, 409)
    t.equal(res.json().code, 'LANDLORD_RETENTION_EXPIRED')
  })

  t.test('legal hold: immediate and scheduled wipes wait until it is released', async (t) => {
    const held = await call('PUT', '/tenants/globex/legal-hold', { reason: 'litigation 2026-114' })
    t.equal(held.statusCode, 200)
    t.match(held.json().legal_hold, { reason: 'litigation 2026-114', placed_by: 'admin' })
    t.equal((await call('PUT', '/tenants/globex/legal-hold', {})).statusCode, 400, 'a reason is required')

    const now = await call('DELETE', '/tenants/globex?retention=PT0S')
    t.equal(now.statusCode, 409)
    t.match(now.json(), { code: 'LANDLORD_LEGAL_HOLD', detail: /litigation 2026-114/ })
    t.equal((await h.waitForState('globex', 'active')).state, 'active')

    t.equal((await call('DELETE', '/tenants/globex?retention=P1D')).statusCode, 202, 'decommissioning itself is allowed')
    await h.waitForState('globex', 'decommissioned')
    await db.updateTable('tenants').set({ wipe_after: new Date(Date.now() - 1000) }).where('slug', '=', 'globex').execute()
    t.equal(await expireRetention(h.workerDeps), 1, 'only the expired tenant without a hold is wiped')
    await h.waitForState('late', 'wiped')
    const wipe = await applyWipe()
    t.equal(wipe, 409, 'a direct WIPE is refused too')
    t.equal((await h.waitForState('globex', 'decommissioned')).state, 'decommissioned')

    t.equal((await call('DELETE', '/tenants/globex/legal-hold')).statusCode, 200)
    t.equal(await expireRetention(h.workerDeps), 1, 'released: the due wipe runs')
    await h.waitForState('globex', 'wiped')
    const types = (await call('GET', '/tenants/globex/events')).json().items.map((e: { type: string }) => e.type)
    t.same(types, ['CREATE', 'EFFECTS_APPLIED', 'LEGAL_HOLD_PLACED', 'DECOMMISSION', 'EFFECTS_APPLIED', 'LEGAL_HOLD_RELEASED', 'WIPE', 'WIPE_RECEIPT', 'EFFECTS_APPLIED'])

    async function applyWipe() {
      const { applyEvent } = await import('../../src/lifecycle/transition.js')
      return applyEvent(db, 'globex', { type: 'WIPE' }, { actor: 'test' }).then(
        () => 200,
        (err: { status: number }) => err.status,
      )
    }
  })

  t.test('wipe drops the database and every role of the tenant, and leaves a receipt and a tombstone', async (t) => {
    const c = await credentials('acme')
    issued.push(c)
    const live = await db.selectFrom('leases').innerJoin('tenants', 'tenants.id', 'leases.tenant_id').select('leases.id').where('slug', '=', 'acme').where('revoked_at', 'is', null).execute()
    t.ok(live.length >= 1)
    const res = await call('DELETE', '/tenants/acme?retention=PT0S')
    t.equal(res.statusCode, 202)
    t.match(res.json(), { state: 'wiping' })
    await h.waitForState('acme', 'wiped')
    const database = `${h.config.tenantDbPrefix}acme`
    t.equal((await h.cluster.query('SELECT 1 FROM pg_database WHERE datname = $1', [database])).rowCount, 0, 'no database')
    const roles = await h.cluster.query("SELECT rolname FROM pg_roles WHERE rolname = $1 OR rolname LIKE $1 || '-%'", [database])
    t.same(roles.rows, [], 'no role of the tenant')
    const key = await db.selectFrom('tenant_keys').selectAll().innerJoin('tenants', 'tenants.id', 'tenant_keys.tenant_id').where('slug', '=', 'acme').executeTakeFirstOrThrow()
    t.equal(key.wrapped_key, null, 'key material destroyed')
    const tomb = await call('GET', '/tenants/acme')
    t.equal(tomb.statusCode, 200)
    t.match(tomb.json(), { state: 'wiped', stable: true })
    const events = (await call('GET', '/tenants/acme/events')).json().items
    const receipt = events.find((e: { type: string }) => e.type === 'WIPE_RECEIPT')
    t.match(receipt.data, {
      database: { name: database, dropped: true },
      leases_revoked: live.length,
      key_material: 'destroyed',
      requested_by: 'admin',
      requested_with: 'DECOMMISSION',
    })
    t.ok(receipt.data.roles_dropped.includes(database), 'the owner role is on the receipt')
    t.equal((await call('POST', '/tenants/acme/credentials')).statusCode, 423)
    t.equal((await call('PATCH', '/tenants/acme/resume')).statusCode, 409, 'wiped is final')
    t.equal((await call('PUT', '/tenants/acme/legal-hold', { reason: 'too late' })).statusCode, 409)
  })

  t.test('an unknown tenant is a 404 on every lifecycle route', async (t) => {
    for (const [method, url] of [
      ['PATCH', '/tenants/nobody/suspend'],
      ['PATCH', '/tenants/nobody/wake'],
      ['DELETE', '/tenants/nobody'],
      ['POST', '/tenants/nobody/restore'],
      ['POST', '/tenants/nobody/credentials'],
      ['POST', '/tenants/nobody/rotate-credentials'],
      ['GET', '/tenants/nobody/connection'],
      ['DELETE', '/tenants/nobody/legal-hold'],
    ] as const) {
      t.equal((await call(method, url)).statusCode, 404, `${method} ${url}`)
    }
  })

  t.test('passwords appear only in the response that issued them: not in logs, not elsewhere', async (t) => {
    t.ok(issued.length >= 8)
    t.ok(logText.length > 0, 'logs were captured')
    for (const c of issued) {
      t.notOk(logText.includes(c.password), `lease ${c.lease_id} password not logged`)
      t.equal(responses.filter((r) => r.includes(c.password)).length, 0, 'nor in any other response')
    }
    const rows = JSON.stringify(await db.selectFrom('leases').selectAll().execute())
    t.notOk(issued.some((c) => rows.includes(c.password)), 'nor stored in clear')
  })
})

t.test('tenant logins cannot reach the control database; RETRY and early wipes go through the API', async (t) => {
  const h = await setup(t)
  await h.startWorkers()
  await h.app.inject({ method: 'POST', url: '/tenants', headers: auth, payload: { slug: 'probe' } })
  await h.waitForState('probe', 'active')
  const c: Creds = (await h.app.inject({ method: 'POST', url: '/tenants/probe/credentials', headers: auth })).json()
  const control = new URL(h.config.databaseUrl).pathname.slice(1)
  t.match(await tryConnect(c, control), { code: '42501' }, 'the registry is closed to tenant logins')

  // A wipe that failed cannot be pushed through with RETRY while a legal hold is placed.
  await h.app.inject({ method: 'DELETE', url: '/tenants/probe?retention=P1D', headers: auth })
  await h.waitForState('probe', 'decommissioned')
  await h.cluster.query(`ALTER ROLE ${quoteIdent(`${h.config.tenantDbPrefix}probe`)} RENAME TO ${quoteIdent(`${h.config.tenantDbPrefix}probe_away`)}`)
  await h.cluster.query(`CREATE ROLE ${quoteIdent(`${h.config.tenantDbPrefix}probe`)} NOLOGIN`)
  const early = await h.app.inject({ method: 'DELETE', url: '/tenants/probe?retention=PT0S', headers: auth })
  t.equal(early.statusCode, 202, 'zero retention on a decommissioned tenant wipes it now')
  t.match(early.json(), { state: 'wiping' })
  const failed = await h.waitForState('probe', 'failed')
  t.match(failed.error, /refusing to touch it/, 'the wipe failed: the owner role is not marked for this tenant')
  t.equal((await h.app.inject({ method: 'PUT', url: '/tenants/probe/legal-hold', headers: auth, payload: { reason: 'audit' } })).statusCode, 200)
  const held = await h.app.inject({ method: 'POST', url: '/tenants/probe/retry', headers: auth })
  t.equal(held.statusCode, 409)
  t.equal(held.json().code, 'LANDLORD_LEGAL_HOLD', 'RETRY of a failed wipe is a wipe: refused under hold')
  // Put things back, release the hold: the retried wipe goes through.
  await h.cluster.query(`DROP ROLE ${quoteIdent(`${h.config.tenantDbPrefix}probe`)}`)
  await h.cluster.query(`ALTER ROLE ${quoteIdent(`${h.config.tenantDbPrefix}probe_away`)} RENAME TO ${quoteIdent(`${h.config.tenantDbPrefix}probe`)}`)
  await h.app.inject({ method: 'DELETE', url: '/tenants/probe/legal-hold', headers: auth })
  t.equal((await h.app.inject({ method: 'POST', url: '/tenants/probe/retry', headers: auth })).statusCode, 202)
  await h.waitForState('probe', 'wiped')
  t.equal((await h.app.inject({ method: 'POST', url: '/tenants/probe/rotate-credentials', headers: auth })).json().code, 'LANDLORD_TENANT_WIPED')
  const retry = await h.app.inject({ method: 'POST', url: '/tenants/probe/retry', headers: auth })
  t.equal(retry.statusCode, 409)
  t.same(retry.json().allowed_events, [], 'nothing is allowed once wiped')
})
