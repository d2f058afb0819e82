// Rate limits per API key, shared by replicas through Redis: RateLimit-*
// headers on every answer, a 429 problem with Retry-After past the limit;
// health probes are never limited. And a body over the limit is a 413 problem.
import t from 'tap'
import { compose } from '../../src/compose.js'
import { auth, setup } from '../helpers.js'

t.test('rate limits', async (t) => {
  const h = await setup(t, { RATE_LIMIT_MAX: '3', RATE_LIMIT_WINDOW: '1m' })
  // A second replica: same configuration, same Redis.
  const replica = await compose(h.config, { api: true, workers: false, prepare: false })
  t.teardown(() => replica.close())
  const other = await h.app.inject({ method: 'POST', url: '/principals', headers: auth, payload: { name: 'other', scopes: ['tenants:read'] } })
  t.equal(other.statusCode, 201)
  const otherKey = (await h.app.inject({ method: 'POST', url: '/principals/other/keys', headers: auth, payload: {} })).json<{ key: string }>().key

  // The admin key has used 2 of its 3 requests above; spelt another way, it is the same key.
  const third = await h.app.inject({ method: 'GET', url: '/tenants', headers: { authorization: auth.authorization.replace('Bearer ', 'bearer   ') } })
  t.equal(third.statusCode, 200)
  t.equal(third.headers['ratelimit-limit'], '3')
  t.equal(third.headers['ratelimit-remaining'], '0')
  t.ok(Number(third.headers['ratelimit-reset']) > 0)

  const limited = await replica.app!.inject({ method: 'GET', url: '/tenants', headers: auth })
  t.equal(limited.statusCode, 429, 'the replica counts the same key')
  t.match(limited.headers['content-type'], /^application\/problem\+json/)
  t.match(limited.json(), { status: 429, code: 'LANDLORD_RATE_LIMITED' })
  t.ok(Number(limited.headers['retry-after']) > 0)

  t.equal((await h.app.inject({ method: 'GET', url: '/tenants', headers: { authorization: `Bearer ${otherKey}` } })).statusCode, 200, 'another key has its own limit')
  for (let i = 0; i < 5; i++) t.equal((await h.app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200, 'probes are not limited')
})

t.test('a body over the limit is a 413 problem and creates nothing', async (t) => {
  const h = await setup(t)
  const res = await h.app.inject({ method: 'POST', url: '/tenants', headers: { ...auth, 'content-type': 'application/json' }, payload: JSON.stringify({ slug: 'big', name: 'x'.repeat(300 * 1024) }) })
  t.equal(res.statusCode, 413)
  t.match(res.headers['content-type'], /^application\/problem\+json/)
  t.match(res.json(), { status: 413, code: 'LANDLORD_BODY_TOO_LARGE' })
  t.same(await h.db.selectFrom('tenants').select('id').execute(), [])
})
