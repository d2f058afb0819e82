// A credential request for a hibernated tenant waits for it to wake, but only
// for WAKE_TIMEOUT: then a 503 with Retry-After, and the wake goes on.
import t from 'tap'
import { auth, setup } from '../helpers.js'

t.test('a wake that takes longer than WAKE_TIMEOUT answers 503 with Retry-After', async (t) => {
  const h = await setup(t, { WAKE_TIMEOUT: 'PT0.3S' })
  const workers = await h.startWorkers()
  await h.app.inject({ method: 'POST', url: '/tenants', headers: auth, payload: { slug: 'sleepy' } })
  await h.waitForState('sleepy', 'active')
  await h.app.inject({ method: 'PATCH', url: '/tenants/sleepy/hibernate', headers: auth })
  await h.waitForState('sleepy', 'hibernated')
  await workers.stop() // nobody is there to wake it in time

  const started = Date.now()
  const res = await h.app.inject({ method: 'POST', url: '/tenants/sleepy/credentials', headers: auth })
  t.equal(res.statusCode, 503)
  t.equal(res.headers['retry-after'], '5')
  t.match(res.json(), { code: 'LANDLORD_WAKE_TIMEOUT', status: 503 })
  t.notOk('password' in res.json())
  t.ok(Date.now() - started >= 300, 'it waited for WAKE_TIMEOUT first')
  t.equal((await h.app.inject({ url: '/tenants/sleepy/status', headers: auth })).json().state, 'waking', 'the wake was requested')

  await h.startWorkers()
  await h.waitForState('sleepy', 'active')
  const retry = await h.app.inject({ method: 'POST', url: '/tenants/sleepy/credentials', headers: auth })
  t.equal(retry.statusCode, 201, 'a retry after the wake gets credentials')
})
