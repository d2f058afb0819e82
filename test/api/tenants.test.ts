// Onboarding and the registry through HTTP, down to the real Postgres.
import t from 'tap'
import { claimKey } from '../../src/db/idempotency.js'
import { auth, setup } from '../helpers.js'

t.test('tenant routes', async (t) => {
  const h = await setup(t)
  const { app, db } = h
  await h.startWorkers()
  const count = async () => Number((await db.selectFrom('tenants').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n)

  t.test('every tenant route needs an API key', async (t) => {
    for (const [method, url] of [
      ['GET', '/tenants'],
      ['POST', '/tenants'],
      ['GET', '/tenants/acme'],
      ['GET', '/tenants/acme/status'],
      ['GET', '/tenants/acme/events'],
    ] as const) {
      const none = await app.inject({ method, url })
      t.equal(none.statusCode, 401, `${method} ${url} without a key`)
      t.match(none.headers['content-type'], /^application\/problem\+json/)
      t.equal(none.json().code, 'LANDLORD_UNAUTHORIZED')
      const wrong = await app.inject({ method, url, headers: { authorization: 'Bearer nope' } })
      t.equal(wrong.statusCode, 401, `${method} ${url} with a wrong key`)
    }
    t.equal(await count(), 0)
  })

  t.test('POST /tenants registers the tenant and its database is provisioned in the background', async (t) => {
    const res = await app.inject({
      method: 'POST',
      url: '/tenants',
      headers: auth,
      payload: { slug: 'acme', name: 'Acme Inc', plan: 'pro', region: 'eu', metadata: { crm: 'A-1' } },
    })
    t.equal(res.statusCode, 202)
    const body = res.json()
    t.equal(res.headers.location, `/tenants/${body.id}`)
    t.match(body, {
      slug: 'acme',
      name: 'Acme Inc',
      plan: 'pro',
      region: 'eu',
      metadata: { crm: 'A-1' },
      state: 'provisioning',
      stable: false,
      operation: 'provision',
      database: `${h.config.tenantDbPrefix}acme`,
    })

    await h.waitForState('acme', 'active')
    const status = await app.inject({ url: `/tenants/${body.id}/status`, headers: auth })
    t.same(status.json(), {
      id: body.id,
      slug: 'acme',
      state: 'active',
      stable: true,
      schema_version: 1,
      operation: null,
      error: null,
    })
    const exists = await h.cluster.query('SELECT 1 FROM pg_database WHERE datname = $1', [body.database])
    t.equal(exists.rowCount, 1, 'the database really exists')

    const bySlug = await app.inject({ url: '/tenants/acme', headers: auth })
    const byId = await app.inject({ url: `/tenants/${body.id.toUpperCase()}`, headers: auth })
    t.equal(bySlug.statusCode, 200)
    t.same(bySlug.json(), byId.json(), 'uuid and slug name the same tenant')

    const events = await app.inject({ url: '/tenants/acme/events', headers: auth })
    t.same(
      events.json().items.map((e: { type: string; from_state: string; to_state: string; actor: string }) => [e.type, e.from_state, e.to_state, e.actor]),
      [
        ['CREATE', null, 'provisioning', 'admin'],
        ['EFFECTS_APPLIED', 'provisioning', 'active', 'worker'],
      ],
    )
  })

  t.test('a taken slug is 409 and creates nothing', async (t) => {
    const before = await count()
    const res = await app.inject({ method: 'POST', url: '/tenants', headers: auth, payload: { slug: 'acme' } })
    t.equal(res.statusCode, 409)
    t.equal(res.json().code, 'LANDLORD_SLUG_TAKEN')
    t.equal(await count(), before)
  })

  t.test('bad input is a 400 problem and changes nothing', async (t) => {
    const before = await count()
    const cases: Array<[string, unknown, string]> = [
      ['slug too short', { slug: 'ab' }, 'body.slug'],
      ['slug with capitals', { slug: 'Acme' }, 'body.slug'],
      ['slug with a quote', { slug: 'acme"; DROP DATABASE x; --' }, 'body.slug'],
      ['slug too long', { slug: 'a'.repeat(31) }, 'body.slug'],
      ['missing slug', { name: 'x' }, 'body.slug'],
      ['unknown field', { slug: 'okslug', owner: 'me' }, 'body.owner'],
      ['wrong type', { slug: 'okslug', metadata: 'x' }, 'body.metadata'],
    ]
    for (const [name, payload, path] of cases) {
      const res = await app.inject({ method: 'POST', url: '/tenants', headers: auth, payload: payload as object })
      t.equal(res.statusCode, 400, name)
      t.match(res.headers['content-type'], /^application\/problem\+json/, name)
      t.equal(res.json().code, 'LANDLORD_VALIDATION_FAILED', name)
      t.ok(
        res.json().errors.some((e: { path: string }) => e.path === path),
        `${name} names ${path}`,
      )
    }
    for (const slug of ['postgres', 'template1', 'pg_catalogx', 'admin']) {
      const res = await app.inject({ method: 'POST', url: '/tenants', headers: auth, payload: { slug } })
      t.equal(res.statusCode, 400, `reserved ${slug}`)
      t.equal(res.json().code, 'LANDLORD_INVALID_SLUG')
    }
    const notJson = await app.inject({
      method: 'POST',
      url: '/tenants',
      headers: { ...auth, 'content-type': 'application/json' },
      payload: '{"slug": ',
    })
    t.equal(notJson.statusCode, 400)
    t.match(notJson.headers['content-type'], /^application\/problem\+json/)
    t.equal(await count(), before)
    const roles = await h.cluster.query("SELECT 1 FROM pg_roles WHERE rolname LIKE $1 || '%'", [`${h.config.tenantDbPrefix}ok`])
    t.equal(roles.rowCount, 0, 'no role was created')
  })

  t.test('Idempotency-Key: a replay returns the first response and creates one tenant', async (t) => {
    const headers = { ...auth, 'idempotency-key': 'create-globex-1' }
    const first = await app.inject({ method: 'POST', url: '/tenants', headers, payload: { slug: 'globex', plan: 'free' } })
    t.equal(first.statusCode, 202)
    const replay = await app.inject({ method: 'POST', url: '/tenants', headers, payload: { plan: 'free', slug: 'globex' } })
    t.equal(replay.statusCode, 202)
    t.equal(replay.headers['idempotent-replayed'], 'true')
    t.equal(replay.headers.location, first.headers.location)
    t.same(replay.json(), first.json(), 'the very first response, even though the tenant has moved on')
    const rows = await db.selectFrom('tenants').select('id').where('slug', '=', 'globex').execute()
    t.equal(rows.length, 1)

    const other = await app.inject({ method: 'POST', url: '/tenants', headers, payload: { slug: 'globex', plan: 'pro' } })
    t.equal(other.statusCode, 422)
    t.equal(other.json().code, 'LANDLORD_IDEMPOTENCY_KEY_REUSED')
  })

  t.test('Idempotency-Key: a duplicate while the first is in flight is 409', async (t) => {
    const before = await count()
    // The first request has claimed the key and not answered yet.
    const payload = { slug: 'initech' }
    const { createHash } = await import('node:crypto')
    const hash = createHash('sha256').update(`POST /tenants\n{}\n${JSON.stringify(payload)}`).digest('hex')
    t.same(await claimKey(db, 'admin', 'in-flight', hash), { kind: 'claimed' })
    const dup = await app.inject({ method: 'POST', url: '/tenants', headers: { ...auth, 'idempotency-key': 'in-flight' }, payload })
    t.equal(dup.statusCode, 409)
    t.equal(dup.json().code, 'LANDLORD_IDEMPOTENCY_IN_PROGRESS')
    t.equal(await count(), before)

    // Truly concurrent duplicates: one tenant, never two, and no 5xx.
    const headers = { ...auth, 'idempotency-key': 'race-1' }
    const results = await Promise.all(
      Array.from({ length: 5 }, () => app.inject({ method: 'POST', url: '/tenants', headers, payload: { slug: 'hooli' } })),
    )
    const codes = results.map((r) => r.statusCode)
    t.ok(codes.every((c) => c === 202 || c === 409), `only 202 or 409: ${codes.join(',')}`)
    t.equal(results.filter((r) => r.statusCode === 202 && !r.headers['idempotent-replayed']).length, 1, 'one request ran')
    t.equal((await db.selectFrom('tenants').select('id').where('slug', '=', 'hooli').execute()).length, 1)
  })

  t.test('Idempotency-Key: the response is committed with the tenant, so a crash before answering still replays', async (t) => {
    const { createHash } = await import('node:crypto')
    const { createTenant } = await import('../../src/lifecycle/transition.js')
    const { ClaimedKey } = await import('../../src/api/idempotency.js')
    const { tenantResource } = await import('../../src/api/tenants.js')
    const payload = { slug: 'crashed' }
    const hash = createHash('sha256').update(`POST /tenants\n{}\n${JSON.stringify(payload)}`).digest('hex')
    // What the route does, up to the commit; then the process dies before onSend.
    t.same(await claimKey(db, 'admin', 'crash-1', hash), { kind: 'claimed' })
    const claimed = new ClaimedKey(db, 'admin', 'crash-1')
    const tenant = await createTenant(db, h.config.tenantDbPrefix, payload, 'admin', (trx, created) =>
      claimed.complete(trx, 202, tenantResource(created), `/tenants/${created.id}`),
    )
    const retry = await app.inject({ method: 'POST', url: '/tenants', headers: { ...auth, 'idempotency-key': 'crash-1' }, payload })
    t.equal(retry.statusCode, 202, 'the retry replays instead of finding its own slug taken')
    t.equal(retry.headers['idempotent-replayed'], 'true')
    t.equal(retry.headers.location, `/tenants/${tenant.id}`)
    t.equal(retry.json().id, tenant.id)
  })

  t.test('GET /tenants pages with a keyset cursor and filters', async (t) => {
    for (const slug of ['page_a', 'page_b', 'page_c', 'page_d', 'page_e']) {
      const res = await app.inject({ method: 'POST', url: '/tenants', headers: auth, payload: { slug, plan: 'paged' } })
      t.equal(res.statusCode, 202)
    }
    const seen: string[] = []
    let cursor: string | null = null
    let pages = 0
    do {
      const url: string = `/tenants?plan=paged&limit=2${cursor ? `&cursor=${cursor}` : ''}`
      const res = await app.inject({ url, headers: auth })
      t.equal(res.statusCode, 200)
      const body = res.json()
      t.ok(body.items.length <= 2)
      seen.push(...body.items.map((i: { slug: string }) => i.slug))
      cursor = body.next_cursor
      pages++
    } while (cursor)
    t.same(seen, ['page_a', 'page_b', 'page_c', 'page_d', 'page_e'], 'every tenant once, in creation order')
    t.equal(pages, 3)

    const none = await app.inject({ url: '/tenants?plan=paged&state=wiped', headers: auth })
    t.same(none.json(), { items: [], next_cursor: null })
    const bad = await app.inject({ url: '/tenants?cursor=bm9wZQ', headers: auth })
    t.equal(bad.statusCode, 400)
    t.equal(bad.json().code, 'LANDLORD_INVALID_CURSOR')
    const badLimit = await app.inject({ url: '/tenants?limit=1000', headers: auth })
    t.equal(badLimit.statusCode, 400)
    const unknown = await app.inject({ url: '/tenants?sort=name', headers: auth })
    t.equal(unknown.statusCode, 400)
  })

  t.test('an unknown tenant is a 404 problem', async (t) => {
    for (const url of ['/tenants/nobody', '/tenants/00000000-0000-4000-8000-000000000000/status', '/tenants/nobody/events']) {
      const res = await app.inject({ url, headers: auth })
      t.equal(res.statusCode, 404, url)
      t.equal(res.json().code, 'LANDLORD_TENANT_NOT_FOUND')
      t.equal(res.json().instance, url)
    }
  })

  t.test('health, readiness and docs need no key', async (t) => {
    t.same((await app.inject({ url: '/healthz' })).json(), { status: 'ok' })
    const ready = await app.inject({ url: '/readyz' })
    t.equal(ready.statusCode, 200)
    t.same(ready.json(), { status: 'ok', checks: { postgres: 'ok', redis: 'ok' }, secrets_backend: 'local' })
    t.equal((await app.inject({ url: '/openapi.json' })).json().info.title, 'Landlord')
    t.equal((await app.inject({ url: '/docs' })).statusCode < 400, true)
  })
})
