// Access control through HTTP: every operation of the OpenAPI document is
// refused without a key (401), without its scope (403) and, for a tenant the
// principal is not granted, as if the tenant did not exist (404). Then what a
// key for tenant A can do to tenant B (nothing, by id or by slug, listings and
// cursors included), grants revoked mid-session, denials, keys, and a wiped
// tenant vanishing from every grant.
import t from 'tap'
import { SCOPES } from '../../src/access/scopes.js'
import { ROUTE_ACCESS } from '../../src/api/route-access.js'
import { auth, principalWithKey, setup, waitFor } from '../helpers.js'

interface Operation {
  method: string
  path: string
  operationId: string
}

t.test('access control', async (t) => {
  const h = await setup(t, { WEBHOOK_ALLOWED_NETWORKS: '127.0.0.0/8' })
  const { app, db } = h
  const as = (key: string) => ({ authorization: `Bearer ${key}` })
  const call = (method: string, url: string, headers: Record<string, string>, payload?: object) =>
    app.inject({ method: method as 'GET', url, headers, ...(payload ? { payload } : {}) })

  const workers = await h.startWorkers()
  for (const slug of ['tenant_a', 'tenant_b', 'tenant_c']) t.equal((await call('POST', '/tenants', auth, { slug })).statusCode, 202)
  const a = await h.waitForState('tenant_a', 'active')
  const b = await h.waitForState('tenant_b', 'active')
  await h.waitForState('tenant_c', 'active')

  /** A principal with `scopes`, granted `grants`, and a key for it. */
  const principal = (name: string, scopes: string[], grants: string[] = []) => principalWithKey(t, app, name, scopes, grants)

  const nobody = await principal('nobody', [])
  const onlyA = await principal('only_a', SCOPES.filter((s) => s !== 'admin'), ['tenant_a'])

  await t.test('every operation: 401 without a key, 403 without its scope, 404 for an ungranted tenant', async (t) => {
    const spec = (await call('GET', '/openapi.json', {})).json<{ paths: Record<string, Record<string, { operationId: string }>> }>()
    const operations: Operation[] = []
    for (const [path, methods] of Object.entries(spec.paths)) {
      for (const [method, op] of Object.entries(methods)) operations.push({ method: method.toUpperCase(), path, operationId: op.operationId })
    }
    const open = new Set(['healthz', 'readyz'])
    const guarded = operations.filter((o) => !open.has(o.operationId))
    t.same(
      guarded.map((o) => o.operationId).sort(),
      Object.keys(ROUTE_ACCESS).sort(),
      'every documented operation has exactly one access rule, and every rule a route',
    )
    for (const op of guarded) {
      const rule = ROUTE_ACCESS[op.operationId]!
      // B's slug for a tenant, a well-formed id for anything else.
      const url = op.path
        .replace('{id}', rule.tenant ? b.slug : '00000000-0000-4000-8000-000000000000')
        .replace('{name}', 'only_a')
        .replace('{keyId}', '00000000-0000-4000-8000-000000000000')
        .replace('{tenant}', 'tenant_b')
      const what = `${op.method} ${op.path}`
      t.equal((await call(op.method, url, {})).statusCode, 401, `${what} without a key`)
      const unscoped = await call(op.method, url, as(nobody))
      t.equal(unscoped.statusCode, rule.scope === null ? 200 : 403, `${what} without its scope`)
      if (rule.scope !== null && rule.scope !== 'admin') {
        const scoped = await call(op.method, url, as(onlyA))
        if (rule.tenant) t.equal(scoped.statusCode, 404, `${what} on an ungranted tenant`)
        else if (rule.everyTenant) t.equal(scoped.statusCode, 403, `${what} needs every tenant`)
        else t.not(scoped.statusCode, 403, `${what} with its scope`)
      }
    }
  })

  await t.test('a key for tenant A can do nothing to B, by id or by slug, and lists only A', async (t) => {
    for (const ref of [b.id, b.slug, b.id.toUpperCase()]) {
      for (const [method, path] of [
        ['GET', ''],
        ['GET', '/status'],
        ['GET', '/events'],
        ['GET', '/connection'],
        ['POST', '/credentials'],
        ['PATCH', '/suspend'],
        ['DELETE', '?retention=PT0S'],
      ] as const) {
        const res = await call(method, `/tenants/${ref}${path}`, as(onlyA))
        t.equal(res.statusCode, 404, `${method} /tenants/${ref}${path}`)
        t.match(res.json(), { code: 'LANDLORD_TENANT_NOT_FOUND' })
      }
    }
    t.equal((await call('GET', `/tenants/${a.slug}`, as(onlyA))).statusCode, 200)
    const page = await call('GET', '/tenants?limit=1', as(onlyA))
    t.same(
      page.json<{ items: Array<{ slug: string }> }>().items.map((x) => x.slug),
      ['tenant_a'],
    )
    t.equal(page.json<{ next_cursor: string | null }>().next_cursor, null, 'no cursor leads past A')
    // A cursor from the admin's listing does not widen the view either.
    const adminPage = (await call('GET', '/tenants?limit=1', auth)).json<{ next_cursor: string }>()
    const after = await call('GET', `/tenants?cursor=${adminPage.next_cursor}`, as(onlyA))
    t.same(after.json<{ items: unknown[] }>().items, [])
    t.equal((await db.selectFrom('tenants').select('state').where('id', '=', b.id).executeTakeFirstOrThrow()).state, 'active', 'B untouched')
  })

  await t.test("an endpoint receives only the events of tenants its creator may see", async (t) => {
    const ep = await call('POST', '/webhook-endpoints', as(onlyA), { url: 'http://127.0.0.1:9/hook' })
    t.equal(ep.statusCode, 201)
    const endpointId = ep.json<{ id: string }>().id
    for (const slug of ['tenant_a', 'tenant_b']) t.equal((await call('POST', `/tenants/${slug}/rotate-credentials`, auth)).statusCode, 202)
    const deliveries = await waitFor(async () => {
      const rows = await db.selectFrom('webhook_deliveries').select(['tenant_id', 'event_type']).where('endpoint_id', '=', endpointId).execute()
      const fannedOut = await db.selectFrom('outbox').select('id').where('name', '=', 'tenant.credentials_rotated').where('fanned_out_at', 'is not', null).execute()
      return fannedOut.length === 2 ? rows : undefined
    })
    t.same(deliveries, [{ tenant_id: a.id, event_type: 'tenant.credentials_rotated' }], "B's event never reaches A's endpoint")
    const listed = (await call('GET', `/webhook-endpoints/${endpointId}/deliveries`, as(onlyA))).json<{ items: Array<{ tenant_id: string }> }>().items
    t.same(listed.map((d) => d.tenant_id), [a.id])
    // Someone else's endpoint (it carries every tenant's events) is out of reach: no redirecting it.
    const admins = (await call('POST', '/webhook-endpoints', auth, { url: 'http://127.0.0.1:9/admin' })).json<{ id: string }>().id
    for (const [method, url, body] of [
      ['GET', `/webhook-endpoints/${admins}`],
      ['PATCH', `/webhook-endpoints/${admins}`, { url: 'http://127.0.0.1:9/stolen' }],
      ['DELETE', `/webhook-endpoints/${admins}`],
      ['GET', `/webhook-endpoints/${admins}/deliveries`],
    ] as const) {
      t.equal((await call(method, url, as(onlyA), body)).statusCode, 404, `${method} ${url}`)
    }
    t.same((await call('GET', '/webhook-endpoints', as(onlyA))).json<{ items: Array<{ id: string }> }>().items.map((e) => e.id), [endpointId])
    t.match((await db.selectFrom('webhook_endpoints').select('url').where('id', '=', admins).executeTakeFirstOrThrow()).url, /\/admin$/)
    t.equal((await call('DELETE', `/webhook-endpoints/${endpointId}`, as(onlyA))).statusCode, 204)
    t.equal((await call('DELETE', `/webhook-endpoints/${admins}`, auth)).statusCode, 204)
  })

  await t.test('a revoked grant or key takes effect on the next request', async (t) => {
    const key = await principal('mid_session', ['tenants:read'], ['tenant_a'])
    t.equal((await call('GET', '/tenants/tenant_a', as(key))).statusCode, 200)
    t.equal((await call('DELETE', '/principals/mid_session/grants/tenant_a', auth)).statusCode, 200)
    t.equal((await call('GET', '/tenants/tenant_a', as(key))).statusCode, 404)
    const keys = (await call('GET', '/principals/mid_session/keys', auth)).json<{ items: Array<{ id: string; last_used_at: string | null }> }>().items
    t.ok(keys[0]?.last_used_at, 'last use recorded')
    t.notMatch(JSON.stringify(keys), /landlord_/, 'no key material in the listing')
    t.equal((await call('DELETE', `/principals/mid_session/keys/${keys[0]!.id}`, auth)).statusCode, 204)
    t.equal((await call('GET', '/me', as(key))).statusCode, 401)
  })

  await t.test('a denial beats a * grant; fleet-wide acts need every tenant', async (t) => {
    const key = await principal('almost_all', ['tenants:read', 'migrations'], ['*'])
    t.equal((await call('GET', '/tenants/tenant_b', as(key))).statusCode, 200)
    t.equal((await call('GET', '/fleet/schema', as(key))).statusCode, 200)
    const denied = await call('PUT', '/principals/almost_all/denials/tenant_b', auth)
    t.match(denied.json(), { all_tenants: true, denials: [{ slug: 'tenant_b' }] })
    t.equal((await call('GET', '/tenants/tenant_b', as(key))).statusCode, 404)
    t.equal((await call('GET', '/fleet/schema', as(key))).statusCode, 403)
    const slugs = (await call('GET', '/tenants', as(key))).json<{ items: Array<{ slug: string }> }>().items.map((x) => x.slug)
    t.same(slugs, ['tenant_a', 'tenant_c'])
    t.equal((await call('PUT', '/principals/almost_all/denials/*', auth)).statusCode, 400)
  })

  await t.test('keys: shown once, expiring, and the bootstrap principal cannot be locked out', async (t) => {
    t.equal((await call('POST', '/principals/only_a/keys', auth, { expires_at: '2001-01-01T00:00:00Z' })).statusCode, 422)
    const short = await call('POST', '/principals/only_a/keys', auth, { expires_at: new Date(Date.now() + 60_000).toISOString() })
    const { id, key } = short.json<{ id: string; key: string }>()
    t.match(key, /^landlord_[A-Za-z0-9_-]{43}$/)
    t.equal((await call('GET', '/me', as(key))).statusCode, 200)
    await db.updateTable('api_keys').set({ expires_at: new Date(Date.now() - 1000) }).where('id', '=', id).execute()
    t.equal((await call('GET', '/me', as(key))).statusCode, 401, 'expired')
    t.equal((await call('PATCH', '/principals/admin', auth, { scopes: ['tenants:read'] })).statusCode, 409)
    t.equal((await call('DELETE', '/principals/admin', auth)).statusCode, 409)
    t.equal((await call('DELETE', '/principals/admin/grants/*', auth)).statusCode, 409)
    t.equal((await call('POST', '/principals', auth, { name: 'only_a', scopes: [] })).statusCode, 409)
    t.equal((await call('POST', '/principals', auth, { name: 'Bad Name', scopes: [] })).statusCode, 400)
    t.equal((await call('POST', '/principals', auth, { name: 'x_y', scopes: ['root'] })).statusCode, 400)
  })

  await t.test('a wiped tenant vanishes from every grant, and its principals are told', async (t) => {
    const key = await principal('lands_on_c', ['tenants:read'], ['tenant_c'])
    t.equal((await call('PUT', '/principals/lands_on_c/denials/tenant_c', auth)).statusCode, 200)
    t.equal((await call('DELETE', '/principals/lands_on_c/denials/tenant_c', auth)).statusCode, 200)
    t.equal((await call('PUT', '/principals/lands_on_c/main-tenant', auth, { tenant: 'tenant_c' })).statusCode, 200)
    t.match((await call('GET', '/me', as(key))).json(), { principal: 'lands_on_c', main_tenant: { slug: 'tenant_c', granted: true }, scopes: ['tenants:read'] })
    t.equal((await call('PUT', '/principals/nobody/main-tenant', auth, { tenant: 'tenant_c' })).statusCode, 409, 'only a granted tenant')
    t.equal((await call('DELETE', '/tenants/tenant_c?retention=PT0S', auth)).statusCode, 202)
    await h.waitForState('tenant_c', 'wiped', 30_000)
    const me = (await call('GET', '/me', as(key))).json()
    t.match(me, { grants: [], main_tenant: null, main_tenant_lost: 'tenant tenant_c was wiped' })
    const left = await db.selectFrom('principal_grants').select('tenant_id').where('tenant_id', '=', (await h.waitForState('tenant_c', 'wiped')).id).execute()
    t.same(left, [])
  })

  await workers.stop()
})
