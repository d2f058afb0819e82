// Webhooks to a real local receiver that verifies with `standardwebhooks`:
// signed, retried under one webhook-id, in order per tenant, never lost.
import { PassThrough } from 'node:stream'
import t from 'tap'
import { jobId } from '../../src/jobs/relay.js'
import { ensureConfigEndpoint } from '../../src/webhooks/endpoints.js'
import { auth, setup, waitFor } from '../helpers.js'
import { startReceiver, type Received } from './receiver.js'

t.test('webhook delivery', async (t) => {
  const logs = new PassThrough()
  let logText = ''
  logs.on('data', (d: Buffer) => (logText += d.toString()))
  const h = await setup(
    t,
    {
      WEBHOOK_RETRY_SCHEDULE: '100ms,100ms,100ms,100ms',
      WEBHOOK_TIMEOUT: 'PT2S',
      MAINTENANCE_INTERVAL: '200ms',
      WEBHOOK_DISABLE_AFTER: 'P1D',
      // The receiver listens on loopback, which webhooks may not reach by default.
      WEBHOOK_ALLOWED_NETWORKS: '127.0.0.0/8',
    },
    logs,
  )
  const receiver = await startReceiver()
  t.teardown(() => receiver.close())
  const { app, db } = h
  const secrets: string[] = []

  async function endpoint(path: string, extra: object = {}) {
    const res = await app.inject({ method: 'POST', url: '/webhook-endpoints', headers: auth, payload: { url: receiver.url(path), ...extra } })
    t.equal(res.statusCode, 201, `endpoint ${path} created`)
    const body = res.json()
    receiver.trust(path, body.secret)
    secrets.push(body.secret)
    return body as { id: string; secret: string }
  }
  const at = (path: string, type?: string, slug?: string) =>
    receiver.received.filter((r) => r.path === path && (!type || r.json.type === type) && (!slug || r.json.data.tenant.slug === slug))
  const until = (what: string, check: () => boolean, ms = 10_000) => waitFor(async () => (check() ? true : undefined), ms, () => what)
  const onboard = async (slug: string) => {
    t.equal((await app.inject({ method: 'POST', url: '/tenants', headers: auth, payload: { slug } })).statusCode, 202)
  }

  t.test('endpoints: the secret is shown once; bad URLs are refused and create nothing', async (t) => {
    const created = await endpoint('/crud', { description: 'billing', event_types: ['tenant.created'] })
    t.match(created.secret, /^whsec_[A-Za-z0-9+/]{43}=$/)
    const list = await app.inject({ url: '/webhook-endpoints', headers: auth })
    t.equal(list.statusCode, 200)
    t.notOk(list.body.includes(created.secret), 'the list never shows the secret')
    const one = await app.inject({ url: `/webhook-endpoints/${created.id}`, headers: auth })
    t.match(one.json(), { id: created.id, description: 'billing', event_types: ['tenant.created'], enabled: true, events: [{ type: 'created' }] })
    t.notOk(one.body.includes(created.secret), 'nor does the detail')
    t.notOk(JSON.stringify(await db.selectFrom('webhook_endpoints').selectAll().execute()).includes(created.secret.slice(6)), 'stored sealed, not in clear')

    const before = (await db.selectFrom('webhook_endpoints').select('id').execute()).length
    for (const [url, code] of [
      ['ftp://billing.example/hook', 'LANDLORD_INVALID_WEBHOOK_URL'],
      ['https://user:pass@billing.example/hook', 'LANDLORD_INVALID_WEBHOOK_URL'],
      ['not a url', 'LANDLORD_INVALID_WEBHOOK_URL'],
    ] as const) {
      const res = await app.inject({ method: 'POST', url: '/webhook-endpoints', headers: auth, payload: { url } })
      t.equal(res.statusCode, 400, url)
      t.equal(res.json().code, code)
      t.notOk(res.body.includes('pass@'), 'the credentials are not echoed back')
    }
    const unknownType = await app.inject({ method: 'POST', url: '/webhook-endpoints', headers: auth, payload: { url: receiver.url('/x'), event_types: ['tenant.exploded'] } })
    t.equal(unknownType.statusCode, 400)
    const unknownField = await app.inject({ method: 'POST', url: '/webhook-endpoints', headers: auth, payload: { url: receiver.url('/x'), secret: 'mine' } })
    t.equal(unknownField.statusCode, 400)
    t.equal((await db.selectFrom('webhook_endpoints').select('id').execute()).length, before)

    const del = await app.inject({ method: 'DELETE', url: `/webhook-endpoints/${created.id}`, headers: auth })
    t.equal(del.statusCode, 204)
    t.equal((await app.inject({ url: `/webhook-endpoints/${created.id}`, headers: auth })).statusCode, 404)
    t.notOk((await app.inject({ url: '/webhook-endpoints', headers: auth })).body.includes(created.id))
    t.equal((await app.inject({ url: '/webhook-endpoints/nope', headers: auth })).statusCode, 404)
  })

  const firstWorkers = await h.startWorkers()

  t.test('every event is signed per Standard Webhooks and verifies', async (t) => {
    const ep = await endpoint('/signed')
    await onboard('signed')
    await until('created and provisioned to arrive', () => at('/signed', undefined, 'signed').length >= 2)
    const got = at('/signed', undefined, 'signed')
    t.same(got.map((r) => r.json.type), ['tenant.created', 'tenant.provisioned'])
    for (const r of got) {
      t.ok(r.verified, `${r.json.type} verifies with the endpoint secret`)
      t.match(r.headers['webhook-id'], /^msg_[0-9a-f-]{36}$/)
      t.match(r.headers['webhook-signature'], /^v1,/)
      t.match(r.json, { type: r.json.type, timestamp: String, data: { tenant: { slug: 'signed' } } })
      t.notOk(r.body.includes(ep.secret))
    }
  })

  t.test('a receiver failing twice gets the event on the third attempt, under the same webhook-id', async (t) => {
    await endpoint('/flaky', { event_types: ['tenant.created'] })
    receiver.respond('/flaky', (_r, nth) => (nth < 2 ? { status: 500, body: 'billing is down' } : { status: 200, body: 'ok' }))
    await onboard('flaky')
    await until('three attempts', () => at('/flaky').length >= 3)
    const got = at('/flaky')
    t.same(got.map((r) => r.status), [500, 500, 200])
    t.equal(new Set(got.map((r) => r.headers['webhook-id'])).size, 1, 'one webhook-id across the retries')
    t.ok(got.every((r) => r.verified), 'every attempt is signed afresh and verifies')

    const ep = (await db.selectFrom('webhook_endpoints').selectAll().where('url', '=', receiver.url('/flaky')).executeTakeFirstOrThrow()).id
    // The receiver answers before the worker records the outcome: wait for the log to catch up.
    const log = await waitFor(async () => {
      const page = (await app.inject({ url: `/webhook-endpoints/${ep}/deliveries`, headers: auth })).json()
      return page.items[0]?.status === 'succeeded' ? page : undefined
    }, 10_000, () => 'the third attempt in the delivery log')
    t.match(log.items[0], {
      event_type: 'tenant.created',
      status: 'succeeded',
      attempts: 3,
      last_status_code: 200,
      next_attempt_at: null,
      webhook_id: got[0]?.headers['webhook-id'],
      attempt_log: [
        { status_code: 500, response_excerpt: 'billing is down', duration_ms: Number },
        { status_code: 500 },
        { status_code: 200, response_excerpt: 'ok' },
      ],
    })
  })

  t.test("one tenant's events arrive in order while one is retried; other tenants are not held up", async (t) => {
    await endpoint('/ordered')
    // Tenant "slow"'s first event fails until tenant "quick" is fully announced.
    receiver.respond('/ordered', (r) =>
      r.json.data.tenant.slug === 'slow' && r.json.type === 'tenant.created' && at('/ordered', 'tenant.provisioned', 'quick').length === 0
        ? { status: 503, headers: { 'retry-after': '1' } }
        : { status: 204 },
    )
    await onboard('slow')
    await onboard('quick')
    await h.waitForState('slow', 'active')
    await app.inject({ method: 'PATCH', url: '/tenants/slow/suspend', headers: auth })
    await until("slow's events", () => at('/ordered', 'tenant.suspended', 'slow').length === 1, 15_000)
    const quick = at('/ordered', undefined, 'quick')
    t.same(quick.map((r) => `${r.json.type}:${r.status}`), ['tenant.created:204', 'tenant.provisioned:204'], 'quick was not held up')
    const slow = at('/ordered', undefined, 'slow').map((r) => `${r.json.type}:${r.status}`)
    const failures = slow.filter((s) => s === 'tenant.created:503').length
    t.ok(failures >= 1, `slow's first event was retried (${failures} failures)`)
    t.same(
      slow,
      [...Array<string>(failures).fill('tenant.created:503'), 'tenant.created:204', 'tenant.provisioned:204', 'tenant.suspended:204'],
      'nothing later was sent before the earlier event got through',
    )
  })

  t.test('a redirect is a failure, never followed', async (t) => {
    await endpoint('/moved', { event_types: ['tenant.created'] })
    receiver.respond('/moved', (_r, nth) => (nth === 0 ? { status: 302, headers: { location: receiver.url('/elsewhere') } } : { status: 200 }))
    await onboard('moved')
    await until('the retry after the redirect', () => at('/moved').length >= 2)
    t.same(at('/moved').map((r) => r.status), [302, 200])
    t.equal(at('/elsewhere').length, 0, 'the Location was not followed')
  })

  t.test('Retry-After is honoured', async (t) => {
    await endpoint('/later', { event_types: ['tenant.created'] })
    receiver.respond('/later', (_r, nth) => (nth === 0 ? { status: 429, headers: { 'retry-after': '2' } } : { status: 200 }))
    await onboard('later')
    await until('two attempts', () => at('/later').length >= 2)
    const [first, second] = at('/later') as [Received, Received]
    const gap = second.at - first.at
    t.ok(gap >= 1900, `waited for Retry-After: 2 rather than the 100ms schedule (gap ${gap} ms)`)
  })

  t.test('410 Gone disables the endpoint and the operator can see why', async (t) => {
    const ep = await endpoint('/gone', { event_types: ['tenant.created'] })
    receiver.respond('/gone', () => ({ status: 410 }))
    await onboard('gone')
    await until('the 410', () => at('/gone').length === 1)
    const detail = await waitFor(async () => {
      const d = (await app.inject({ url: `/webhook-endpoints/${ep.id}`, headers: auth })).json()
      return d.enabled ? undefined : d
    })
    t.match(detail, { enabled: false, disabled_reason: /410/, events: [{ type: 'disabled', actor: 'landlord' }] })
    t.match(logText, /webhook endpoint disabled: it answered 410 Gone/)
    const metrics = await app.inject({ url: '/metrics', headers: auth })
    t.match(metrics.body, /landlord_webhook_endpoints_disabled_total\{reason="gone"\} 1/)

    await onboard('afterwards')
    await h.waitForState('afterwards', 'active')
    t.equal(at('/gone').length, 1, 'a disabled endpoint gets nothing more')
    const enabled = await app.inject({ method: 'PATCH', url: `/webhook-endpoints/${ep.id}`, headers: auth, payload: { enabled: true } })
    t.match(enabled.json(), { enabled: true, disabled_reason: null })
  })

  t.test('a failed delivery can be retried by hand', async (t) => {
    const ep = await endpoint('/manual', { event_types: ['tenant.created'] })
    let up = false
    receiver.respond('/manual', () => ({ status: up ? 200 : 500 }))
    await onboard('manual')
    const failed = await waitFor(async () => {
      const log = (await app.inject({ url: `/webhook-endpoints/${ep.id}/deliveries?status=failed`, headers: auth })).json()
      return log.items[0]
    })
    t.match(failed, { status: 'failed', attempts: 5, last_status_code: 500 })
    up = true
    const retry = await app.inject({ method: 'POST', url: `/webhook-deliveries/${failed.id}/retry`, headers: auth })
    t.equal(retry.statusCode, 202)
    t.match(retry.json(), { id: failed.id, status: 'pending' })
    await until('the manual retry', () => at('/manual').some((r) => r.status === 200))
    await waitFor(async () => {
      const d = await db.selectFrom('webhook_deliveries').select('status').where('id', '=', failed.id).executeTakeFirstOrThrow()
      return d.status === 'succeeded' ? true : undefined
    })
    await db.updateTable('webhook_deliveries').set({ status: 'pending', next_attempt_at: new Date(Date.now() + 3_600_000) }).where('id', '=', failed.id).execute()
    const scheduled = await app.inject({ method: 'POST', url: `/webhook-deliveries/${failed.id}/retry`, headers: auth })
    t.equal(scheduled.statusCode, 409, 'a delivery already scheduled is not retried by hand')
    t.equal(scheduled.json().code, 'LANDLORD_WEBHOOK_DELIVERY_SCHEDULED')
    t.equal((await app.inject({ method: 'POST', url: '/webhook-deliveries/00000000-0000-4000-8000-000000000000/retry', headers: auth })).statusCode, 404)
  })

  t.test('killing the worker between commit and delivery still delivers after restart', async (t) => {
    await endpoint('/durable', { event_types: ['tenant.created'] })
    // Stop the workers, then commit a transition.
    await firstWorkers.stop()
    const stopped = await h.startWorkers()
    await stopped.stop()
    await onboard('durable')
    const row = await db.selectFrom('outbox').select(['id', 'relayed_at']).where('name', '=', 'tenant.created').orderBy('seq', 'desc').executeTakeFirstOrThrow()
    t.equal(at('/durable').length, 0)
    // The relay hands it to Redis, then Redis loses it (as a flushed or failed-over instance would).
    await stopped.relay.drain()
    await h.queues.webhooks.remove(jobId(row.id))
    await db.updateTable('outbox').set({ created_at: new Date(Date.now() - 60_000) }).where('id', '=', row.id).execute()
    await h.startWorkers()
    await until('the event after restart', () => at('/durable').length === 1, 15_000)
    t.ok(at('/durable')[0]?.verified)
  })

  t.test('BILLING_WEBHOOK_URL creates one endpoint at start, then updates it', async (t) => {
    const secret = `whsec_${Buffer.alloc(32, 7).toString('base64')}`
    const first = await ensureConfigEndpoint(db, h.workerDeps.masterKey, receiver.url('/billing'), secret)
    const again = await ensureConfigEndpoint(db, h.workerDeps.masterKey, receiver.url('/billing2'), secret)
    t.equal(again.id, first.id, 'the same endpoint')
    t.equal(again.url, receiver.url('/billing2'))
    t.equal((await db.selectFrom('webhook_endpoints').select('id').where('managed_by', '=', 'config').execute()).length, 1)
    const del = await app.inject({ method: 'DELETE', url: `/webhook-endpoints/${first.id}`, headers: auth })
    t.equal(del.statusCode, 409, 'the configuration owns it: it cannot be deleted through the API')
    t.equal(del.json().code, 'LANDLORD_WEBHOOK_ENDPOINT_MANAGED')
  })

  t.test('an endpoint deleted while an attempt is in flight stays settled', async (t) => {
    const ep = await endpoint('/slow', { event_types: ['tenant.created'] })
    receiver.respond('/slow', () => ({ status: 500, delayMs: 500 }))
    await onboard('slowpoke')
    await until('the attempt in flight', () => at('/slow').length === 1)
    t.equal((await app.inject({ method: 'DELETE', url: `/webhook-endpoints/${ep.id}`, headers: auth })).statusCode, 204)
    const row = await db.selectFrom('webhook_deliveries').selectAll().where('endpoint_id', '=', ep.id).executeTakeFirstOrThrow()
    t.match(row, { status: 'failed', last_error: 'endpoint deleted' })
    // The worker's late 500 must not put it back to pending.
    await waitFor(async () => {
      const attempts = await db.selectFrom('webhook_attempts').select('id').where('delivery_id', '=', row.id).execute()
      return attempts.length === 1 ? true : undefined
    })
    const after = await db.selectFrom('webhook_deliveries').selectAll().where('id', '=', row.id).executeTakeFirstOrThrow()
    t.match(after, { status: 'failed', last_error: 'endpoint deleted' })
  })

  t.test('secrets never reach the logs', async (t) => {
    t.ok(secrets.length >= 8)
    for (const s of secrets) t.notOk(logText.includes(s.slice(6)), 'endpoint secret not logged')
  })
})
