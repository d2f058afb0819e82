// Attacks on the access-control layer, each of which once worked: a key with
// limited rights (some scopes, tenant A only), a key with fewer (no scope),
// no key at all, and an admin scoped to tenant A try to reach what they should
// not, slip past the rate limit, or make a new route answer 5xx.
import t from 'tap'
import { SCOPES } from '../../src/access/scopes.js'
import { auth, principalWithKey, setup, waitFor } from '../helpers.js'

const as = (key: string) => ({ authorization: `Bearer ${key}` })

t.test('rate limits: requests that auth refuses are never counted', async (t) => {
  const h = await setup(t, { RATE_LIMIT_MAX: '3', RATE_LIMIT_WINDOW: '1m' })
  const call = (method: string, url: string, headers: Record<string, string>, payload?: object) =>
    h.app.inject({ method: method as 'GET', url, headers, ...(payload ? { payload } : {}) })
  t.equal((await call('POST', '/tenants', auth, { slug: 'tenant_b' })).statusCode, 202)
  t.equal((await call('POST', '/principals', auth, { name: 'reader', scopes: ['tenants:read'] })).statusCode, 201)
  const reader = (await call('POST', '/principals/reader/keys', auth, {})).json<{ key: string }>().key

  await t.test('without a key, or with a made-up one, a client is limited per address', async (t) => {
    const before = await h.db.selectFrom('audit_log').select((eb) => eb.fn.countAll<string>().as('n')).executeTakeFirstOrThrow()
    const codes: number[] = []
    for (let i = 0; i < 10; i++) codes.push((await call('DELETE', '/tenants/tenant_b', {})).statusCode)
    for (let i = 0; i < 10; i++) codes.push((await call('DELETE', '/tenants/tenant_b', as(`landlord_guess${i}`))).statusCode)
    t.ok(codes.includes(429), `20 unauthenticated requests from one address, max 3: got ${codes.join(',')}`)
    const after = await h.db.selectFrom('audit_log').select((eb) => eb.fn.countAll<string>().as('n')).executeTakeFirstOrThrow()
    t.ok(Number(after.n) - Number(before.n) <= 3, `a client without a key appended ${Number(after.n) - Number(before.n)} audit rows (each under the global audit lock)`)
  })

  await t.test('a valid key is limited on routes it may not call (403) or tenants it may not see (404)', async (t) => {
    const codes: number[] = []
    for (let i = 0; i < 5; i++) codes.push((await call('POST', '/tenants', as(reader), { slug: `x${i}` })).statusCode) // 403: no tenants:write
    for (let i = 0; i < 5; i++) codes.push((await call('GET', '/tenants/tenant_b', as(reader))).statusCode) // 404: not granted
    t.ok(codes.includes(429), `10 refused requests of one key, max 3: got ${codes.join(',')}`)
    const ok = await call('GET', '/tenants', as(reader))
    t.equal(ok.headers['ratelimit-remaining'], '0', `its budget after 10 refused requests and this one: ${String(ok.headers['ratelimit-remaining'])} left`)
  })
})

t.test('access attacks', async (t) => {
  const h = await setup(t, { WEBHOOK_ALLOWED_NETWORKS: '127.0.0.0/8' })
  const { app, db } = h
  const call = (method: string, url: string, headers: Record<string, string>, payload?: object) =>
    app.inject({ method: method as 'GET', url, headers, ...(payload ? { payload } : {}) })
  const workers = await h.startWorkers()
  for (const slug of ['tenant_a', 'tenant_b']) t.equal((await call('POST', '/tenants', auth, { slug })).statusCode, 202)
  const a = await h.waitForState('tenant_a', 'active')
  const b = await h.waitForState('tenant_b', 'active')

  const principal = (name: string, scopes: string[], grants: string[] = []) => principalWithKey(t, app, name, scopes, grants)
  const onlyA = await principal('only_a', SCOPES.filter((s) => s !== 'admin'), ['tenant_a'])
  // An admin granted tenant A only: GET /audit already keeps it to A (and rows of no tenant).
  const adminA = await principal('admin_a', ['admin'], ['tenant_a'])
  await principal('only_b', ['tenants:read'], ['tenant_b'])

  await t.test('an admin scoped to tenant A mints a key of the bootstrap admin and reads B', async (t) => {
    const minted = await call('POST', '/principals/admin/keys', as(adminA), {})
    t.not(minted.statusCode, 201, 'no key for the bootstrap principal from another principal')
    if (minted.statusCode === 201) {
      const key = minted.json<{ key: string }>().key
      t.equal((await call('GET', `/tenants/${b.slug}`, as(key))).statusCode, 404, 'B stays out of reach of admin_a')
      t.equal((await call('GET', '/audit?tenant=tenant_b', as(key))).statusCode, 404, "B's audit trail stays out of reach of admin_a")
    }
  })

  await t.test('an admin scoped to tenant A widens its own grants to every tenant', async (t) => {
    const widened = await call('PUT', '/principals/admin_a/grants/*', as(adminA))
    t.not(widened.statusCode, 200, 'no self-granted *')
    t.equal((await call('GET', `/tenants/${b.slug}`, as(adminA))).statusCode, 404, 'B stays invisible to admin_a')
    await call('DELETE', '/principals/admin_a/grants/*', auth)
    const direct = await call('PUT', '/principals/admin_a/grants/tenant_b', as(adminA))
    t.not(direct.statusCode, 200, 'no self-granted B')
    await call('DELETE', '/principals/admin_a/grants/tenant_b', auth)
  })

  await t.test('an admin scoped to tenant A learns the id and slug of B from another principal', async (t) => {
    const grants = await call('GET', '/principals/only_b/grants', as(adminA))
    t.notMatch(grants.body, b.id, "B's id is not shown to admin_a")
    t.notMatch(grants.body, b.slug, "B's slug is not shown to admin_a")
  })

  await t.test('another admin revokes the bootstrap key: the bootstrap principal is locked out', async (t) => {
    await principal('other_admin', ['admin'], ['*'])
    const keys = (await call('GET', '/principals/admin/keys', auth)).json<{ items: Array<{ id: string; bootstrap: boolean; revoked_at: string | null }> }>().items
    const bootstrap = keys.find((k) => k.bootstrap && k.revoked_at === null)!
    const other = (await call('POST', '/principals/other_admin/keys', auth, {})).json<{ key: string }>().key
    const revoked = await call('DELETE', `/principals/admin/keys/${bootstrap.id}`, as(other))
    t.equal(revoked.statusCode, 409, 'the bootstrap key cannot be revoked through the API')
    t.equal((await call('GET', '/me', auth)).statusCode, 200, 'the bootstrap key still works')
    if (revoked.statusCode === 204) await db.updateTable('api_keys').set({ revoked_at: null }).where('id', '=', bootstrap.id).execute()
  })

  await t.test('malformed key ids and expiries on the new routes: 4xx, never 5xx', async (t) => {
    for (const keyId of ['a'.repeat(36), '-'.repeat(36), '0'.repeat(36)]) {
      const res = await call('DELETE', `/principals/only_a/keys/${keyId}`, auth)
      t.equal(res.statusCode, 404, `DELETE /principals/only_a/keys/${keyId}: ${res.statusCode}`)
    }
    const before = (await db.selectFrom('api_keys').select('id').where('principal', '=', 'only_a').execute()).length
    // A leap second: ajv's date-time accepts it, Date does not (Invalid Date reaches Postgres).
    const leap = await call('POST', '/principals/only_a/keys', auth, { expires_at: '2030-12-31T23:59:60Z' })
    t.ok(leap.statusCode >= 400 && leap.statusCode < 500, `POST /principals/only_a/keys with a leap-second expiry: ${leap.statusCode}`)
    t.equal((await db.selectFrom('api_keys').select('id').where('principal', '=', 'only_a').execute()).length, before)
  })

  await t.test("slugs are one namespace: a taken slug is a 409 to anyone who may create tenants, and reveals nothing else", async (t) => {
    // Accepted and documented (docs/access.md): a slug can be taken only once, whoever asks.
    const res = await call('POST', '/tenants', as(onlyA), { slug: b.slug })
    t.equal(res.statusCode, 409)
    t.notMatch(res.body, b.id, "B's id is not in the answer")
  })

  await t.test("a key for tenant A retries a delivery of someone else's endpoint", async (t) => {
    const admins = (await call('POST', '/webhook-endpoints', auth, { url: 'http://127.0.0.1:9/admin' })).json<{ id: string }>().id
    t.equal((await call('POST', `/tenants/${a.slug}/rotate-credentials`, auth)).statusCode, 202)
    const delivery = await waitFor(async () =>
      db.selectFrom('webhook_deliveries').select(['id', 'status']).where('endpoint_id', '=', admins).where('tenant_id', '=', a.id).executeTakeFirst(),
    )
    // only_a cannot see the endpoint (the suite checks that): its deliveries should be as unreachable.
    t.equal((await call('GET', `/webhook-endpoints/${admins}`, as(onlyA))).statusCode, 404)
    const res = await call('POST', `/webhook-deliveries/${delivery.id}/retry`, as(onlyA))
    t.equal(res.statusCode, 404, `POST /webhook-deliveries/:id/retry of admin's endpoint as only_a: ${res.statusCode} ${res.body.slice(0, 200)}`)
    await call('DELETE', `/webhook-endpoints/${admins}`, auth)
  })

  await workers.stop()
})
