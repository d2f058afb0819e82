// An endpoint that keeps failing past its retry schedule for
// WEBHOOK_DISABLE_AFTER is disabled, and the operator is told.
import { PassThrough } from 'node:stream'
import t from 'tap'
import { auth, setup, waitFor } from '../helpers.js'
import { startReceiver } from './receiver.js'

t.test('an endpoint failing beyond WEBHOOK_DISABLE_AFTER is disabled', async (t) => {
  const logs = new PassThrough()
  let logText = ''
  logs.on('data', (d: Buffer) => (logText += d.toString()))
  const h = await setup(t, { WEBHOOK_RETRY_SCHEDULE: '50ms,50ms', WEBHOOK_DISABLE_AFTER: 'PT0S', WEBHOOK_ALLOWED_NETWORKS: '127.0.0.0/8' }, logs)
  const receiver = await startReceiver()
  t.teardown(() => receiver.close())
  receiver.respond('/down', () => ({ status: 502 }))
  const created = await h.app.inject({ method: 'POST', url: '/webhook-endpoints', headers: auth, payload: { url: receiver.url('/down') } })
  const id = created.json().id as string
  await h.startWorkers()
  await h.app.inject({ method: 'POST', url: '/tenants', headers: auth, payload: { slug: 'victim' } })

  const endpoint = await waitFor(async () => {
    const e = (await h.app.inject({ url: `/webhook-endpoints/${id}`, headers: auth })).json()
    return e.enabled ? undefined : e
  })
  t.match(endpoint, { enabled: false, disabled_reason: /failing since .* \(WEBHOOK_DISABLE_AFTER/, failing_since: String })
  t.match(endpoint.events[0], { type: 'disabled', actor: 'landlord' })
  t.equal(receiver.received.length, 3, 'the whole schedule was tried first: 1 + 2 retries')
  t.match(logText, /webhook endpoint disabled: failing beyond WEBHOOK_DISABLE_AFTER/)
  t.match((await h.app.inject({ url: '/metrics', headers: auth })).body, /landlord_webhook_endpoints_disabled_total\{reason="failing"\} 1/)

  // Enabled again, it resumes with the events that were still waiting.
  await h.waitForState('victim', 'active')
  const held = await waitFor(() =>
    h.db
      .selectFrom('webhook_deliveries')
      .select('status')
      .where('endpoint_id', '=', id)
      .where('event_type', '=', 'tenant.provisioned')
      .executeTakeFirst(),
  )
  t.equal(held.status, 'pending', 'the next event waits while the endpoint is disabled')
  t.equal(receiver.received.length, 3, 'and is not sent')
  await h.app.inject({ method: 'PATCH', url: '/tenants/victim/suspend', headers: auth })
  await h.waitForState('victim', 'suspended')
  const waiting = await waitFor(async () => {
    const rows = await h.db.selectFrom('webhook_deliveries').select(['status', 'attempts']).where('endpoint_id', '=', id).where('event_type', '!=', 'tenant.created').execute()
    return rows.length === 2 ? rows : undefined
  })
  t.same(waiting, [{ status: 'pending', attempts: 0 }, { status: 'pending', attempts: 0 }], 'both later events are held, never attempted')
  t.equal(receiver.received.length, 3, 'nothing reached the disabled endpoint')
  receiver.respond('/down', () => ({ status: 200 }))
  const enabled = await h.app.inject({ method: 'PATCH', url: `/webhook-endpoints/${id}`, headers: auth, payload: { enabled: true } })
  t.equal(enabled.statusCode, 200)
  await waitFor(async () => (receiver.received.some((r) => r.json.type === 'tenant.suspended') ? true : undefined))
  t.same(
    receiver.received.filter((r) => r.status === 200).map((r) => r.json.type),
    ['tenant.provisioned', 'tenant.suspended'],
    'events held while disabled arrive, in order, once enabled',
  )
})
