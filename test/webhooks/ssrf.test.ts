// Webhook URLs cannot reach Landlord's own network (SSRF): loopback, private,
// link-local and the other internal ranges, in every spelling, are refused at
// registration and PATCH, and again at each delivery, after DNS, on the very
// address the connection then uses.
import type { LookupAddress, LookupOptions } from 'node:dns'
import type { LookupFunction } from 'node:net'
import t from 'tap'
import { fetch } from 'undici'
import { AddressRefusedError, addressPolicy, vettedAgent, vettedLookup, type Resolver } from '../../src/webhooks/address.js'
import { deliver, fanOut } from '../../src/webhooks/deliver.js'
import { ensureConfigEndpoint } from '../../src/webhooks/endpoints.js'
import { auth, setup, waitFor } from '../helpers.js'
import { startReceiver } from './receiver.js'

const loopback = /address 127\.0\.0\.1 is not allowed \(loopback\)/
/** Each URL as given, and what the refusal must name. */
const FORBIDDEN: Array<[string, RegExp]> = [
  ['http://127.0.0.1/hook', loopback],
  ['http://localhost:8080/hook', /^localhost resolves to .*\(loopback\)/],
  ['http://0x7f000001/hook', loopback],
  ['http://2130706433/hook', loopback],
  ['http://017700000001/hook', loopback],
  ['http://127.1/hook', loopback],
  ['http://127.255.255.254:9000/hook', /\(loopback\)/],
  ['http://[::1]/hook', /address ::1 is not allowed \(loopback\)/],
  ['http://[::ffff:127.0.0.1]/hook', loopback],
  ['http://[::ffff:7f00:1]/hook', loopback],
  ['http://0.0.0.0/hook', /\(unspecified\)/],
  ['http://0/hook', /\(unspecified\)/],
  ['http://[::]/hook', /\(unspecified\)/],
  ['http://10.1.2.3/hook', /address 10\.1\.2\.3 is not allowed \(private network\)/],
  ['http://172.16.0.1/hook', /\(private network\)/],
  ['http://172.31.255.254/hook', /\(private network\)/],
  ['http://192.168.1.1/hook', /\(private network\)/],
  ['http://100.64.0.1/hook', /\(carrier-grade NAT\)/],
  ['http://169.254.169.254/latest/meta-data/', /address 169\.254\.169\.254 is not allowed \(link-local\)/],
  ['http://[::ffff:a9fe:a9fe]/latest/meta-data/', /169\.254\.169\.254 .*\(link-local\)/],
  ['http://[fe80::1]/hook', /\(link-local\)/],
  ['http://[fc00::1]/hook', /\(unique local\)/],
  ['http://[fd12::1]/hook', /\(unique local\)/],
  ['http://224.0.0.1/hook', /\(multicast\)/],
  ['http://[ff02::1]/hook', /\(multicast\)/],
  ['http://255.255.255.255/hook', /\(broadcast\)/],
  ['http://240.0.0.1/hook', /\(reserved\)/],
  ['http://[64:ff9b::7f00:1]/hook', /\(NAT64\)/],
  ['http://[::ffff:0:7f00:1]/hook', /\(IPv4-translated\)/],
  ['http://[2002:7f00:1::]/hook', /\(6to4\)/],
  ['http://[2001::7f00:1]/hook', /\(Teredo\)/],
]

const count = async (h: { db: import('../../src/db/index.js').Db }) =>
  Number((await h.db.selectFrom('webhook_endpoints').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n)

t.test('by default, webhook URLs may not reach internal addresses', async (t) => {
  const receiver = await startReceiver()
  t.teardown(() => receiver.close())
  const billingSecret = `whsec_${Buffer.alloc(32, 9).toString('base64')}`
  const h = await setup(t, {
    BILLING_WEBHOOK_URL: receiver.url('/billing'),
    BILLING_WEBHOOK_SECRET: billingSecret,
    WEBHOOK_RETRY_SCHEDULE: '100ms,100ms',
  })
  const { app, db } = h
  const post = (url: string) => app.inject({ method: 'POST', url: '/webhook-endpoints', headers: auth, payload: { url } })

  t.test('every internal address family and encoding is refused at registration, and nothing is created', async (t) => {
    for (const [url, names] of FORBIDDEN) {
      const res = await post(url)
      t.equal(res.statusCode, 400, url)
      t.match(res.headers['content-type'], /^application\/problem\+json/)
      t.match(res.json(), { code: 'LANDLORD_WEBHOOK_URL_FORBIDDEN', status: 400, detail: names }, url)
    }
    const res = await post('http://10.0.0.1/hooks/landlord?token=s3cr3t-token')
    t.equal(res.statusCode, 400)
    t.notOk(res.body.includes('s3cr3t'), 'the query string (a token, maybe) is not echoed')
    t.notOk(res.body.includes('/hooks/landlord'), 'nor is the path')
    t.equal(await count(h), 0, 'no endpoint was created')
    t.equal((await db.selectFrom('webhook_endpoint_events').select('id').execute()).length, 0)
  })

  t.test('public addresses, and names that do not resolve yet, are accepted', async (t) => {
    // No external DNS here: billing.invalid does not resolve, and is vetted again at each delivery.
    for (const url of ['https://93.184.215.14/hook', 'https://[2606:4700::1111]/hook', 'https://[::ffff:5db8:d70e]/hook', 'https://billing.invalid/hook']) {
      const res = await post(url)
      t.equal(res.statusCode, 201, url)
      t.equal((await app.inject({ method: 'DELETE', url: `/webhook-endpoints/${res.json().id}`, headers: auth })).statusCode, 204)
    }
  })

  t.test('a PATCH to an internal URL is refused and leaves the endpoint as it was', async (t) => {
    const created = await post('https://billing.invalid/hook')
    t.equal(created.statusCode, 201)
    const { id } = created.json()
    const before = await db.selectFrom('webhook_endpoints').selectAll().where('id', '=', id).executeTakeFirstOrThrow()
    for (const url of ['http://169.254.169.254/latest/meta-data/', 'http://[::ffff:7f00:1]:6379/', 'http://localhost/']) {
      const res = await app.inject({ method: 'PATCH', url: `/webhook-endpoints/${id}`, headers: auth, payload: { url, description: 'moved' } })
      t.equal(res.statusCode, 400, url)
      t.equal(res.json().code, 'LANDLORD_WEBHOOK_URL_FORBIDDEN')
    }
    const after = await db.selectFrom('webhook_endpoints').selectAll().where('id', '=', id).executeTakeFirstOrThrow()
    t.same(after, before, 'url, description and updated_at unchanged')
    t.same((await db.selectFrom('webhook_endpoint_events').select('type').where('endpoint_id', '=', id).execute()).map((e) => e.type), ['created'])
    await app.inject({ method: 'DELETE', url: `/webhook-endpoints/${id}`, headers: auth })
  })

  t.test("BILLING_WEBHOOK_URL's endpoint is the operator's: it reaches loopback, until its URL is changed", async (t) => {
    const endpoint = await ensureConfigEndpoint(db, h.workerDeps.masterKey, h.config.billingWebhook.url!, billingSecret)
    receiver.trust('/billing', billingSecret)
    await h.startWorkers()
    t.equal((await app.inject({ method: 'POST', url: '/tenants', headers: auth, payload: { slug: 'operator' } })).statusCode, 202)
    await waitFor(async () => (receiver.received.some((r) => r.path === '/billing' && r.json.type === 'tenant.provisioned') ? true : undefined))
    t.ok(receiver.received.filter((r) => r.path === '/billing').every((r) => r.verified), 'signed with BILLING_WEBHOOK_SECRET')

    const patched = await app.inject({ method: 'PATCH', url: `/webhook-endpoints/${endpoint.id}`, headers: auth, payload: { url: receiver.url('/elsewhere') } })
    t.equal(patched.statusCode, 400, 'a URL given through the API is vetted, on this endpoint too')
    // Had it been changed anyway (an older version, an allow-list since removed), it is no longer the operator's URL.
    await db.updateTable('webhook_endpoints').set({ url: receiver.url('/elsewhere') }).where('id', '=', endpoint.id).execute()
    await app.inject({ method: 'POST', url: '/tenants', headers: auth, payload: { slug: 'elsewhere' } })
    const failed = await waitFor(async () => {
      const log = (await app.inject({ url: `/webhook-endpoints/${endpoint.id}/deliveries?status=failed`, headers: auth })).json()
      return log.items[0]
    })
    t.match(failed, { attempts: 3, last_status_code: null, last_error: loopback })
    t.ok(failed.attempt_log.every((a: { error: string }) => loopback.test(a.error)), 'every attempt refused, on the normal schedule')
    t.equal(receiver.received.filter((r) => r.path === '/elsewhere').length, 0, 'the receiver got nothing')
    await app.inject({ method: 'PATCH', url: `/webhook-endpoints/${endpoint.id}`, headers: auth, payload: { enabled: false } })
  })
})

t.test('WEBHOOK_ALLOWED_NETWORKS opens chosen networks, at registration and at delivery', async (t) => {
  const h = await setup(t, { WEBHOOK_ALLOWED_NETWORKS: '127.0.0.0/8,::1/128', WEBHOOK_RETRY_SCHEDULE: '100ms,100ms' })
  const receiver = await startReceiver()
  t.teardown(() => receiver.close())
  const { app, db } = h
  const register = async (url: string) => {
    const res = await app.inject({ method: 'POST', url: '/webhook-endpoints', headers: auth, payload: { url, event_types: ['tenant.created'] } })
    t.equal(res.statusCode, 201, url)
    return res.json<{ id: string; secret: string }>()
  }

  t.test('a worker whose configuration no longer allows the address refuses to deliver', async (t) => {
    const literal = await register(receiver.url('/revoked'))
    const named = await register(receiver.url('/revoked-name').replace('127.0.0.1', 'localhost'))
    // No workers yet: this test plays the worker, with a configuration that allows nothing.
    await app.inject({ method: 'POST', url: '/tenants', headers: auth, payload: { slug: 'revoked' } })
    const event = await db.selectFrom('outbox').select('id').where('name', '=', 'tenant.created').executeTakeFirstOrThrow()
    const deliveries = await fanOut(db, event.id)
    t.equal(deliveries.length, 2)
    const strict = { ...h.config, webhookAllowedNetworks: Object.freeze([] as string[]) }
    for (const { deliveryId } of deliveries) {
      const next = await deliver({ ...h.workerDeps, config: strict }, deliveryId)
      t.equal(next.length, 1, 'a retry is scheduled, as after a network error')
      t.ok(next[0]!.at!.getTime() > Date.now() - 1000)
    }
    for (const [ep, path] of [[literal, '/revoked'], [named, '/revoked-name']] as const) {
      const log = (await app.inject({ url: `/webhook-endpoints/${ep.id}/deliveries`, headers: auth })).json()
      t.match(log.items[0], {
        status: 'pending',
        attempts: 1,
        last_status_code: null,
        last_error: /^address (127\.0\.0\.1|::1) is not allowed \(loopback\)$/,
        attempt_log: [{ status_code: null, response_excerpt: null, error: /^address (127\.0\.0\.1|::1) is not allowed \(loopback\)$/ }],
      }, path)
      // Settled, so that the permissive workers of the next test leave them alone.
      await app.inject({ method: 'DELETE', url: `/webhook-endpoints/${ep.id}`, headers: auth })
    }
    t.equal(receiver.received.length, 0, 'the receiver was never contacted')
  })

  t.test('a receiver on 127.0.0.1 gets a real signed delivery', async (t) => {
    const ep = await register(receiver.url('/allowed'))
    receiver.trust('/allowed', ep.secret)
    await h.startWorkers()
    await app.inject({ method: 'POST', url: '/tenants', headers: auth, payload: { slug: 'allowed' } })
    const got = await waitFor(async () => receiver.received.find((r) => r.path === '/allowed'))
    t.ok(got.verified, 'verifies with the endpoint secret')
    t.match(got.json, { type: 'tenant.created', data: { tenant: { slug: 'allowed' } } })
    t.equal(receiver.received.filter((r) => r.path.startsWith('/revoked')).length, 0)
  })
})

/** Calls a lookup as net.connect would, and reports what it handed back. */
function lookupOnce(lookup: LookupFunction, hostname: string, options: LookupOptions) {
  return new Promise<{ err: NodeJS.ErrnoException | null; address: string | LookupAddress[] }>((resolve) =>
    lookup(hostname, options, (err, address) => resolve({ err, address })),
  )
}

t.test('the vetted lookup never hands a refused address to connect (DNS rebinding)', async (t) => {
  const answers: LookupAddress[][] = [
    [{ address: '93.184.215.14', family: 4 }],
    [{ address: '10.0.0.7', family: 4 }],
    [{ address: '93.184.215.14', family: 4 }, { address: '127.0.0.1', family: 4 }, { address: '::1', family: 6 }, { address: '2606:4700::1111', family: 6 }],
  ]
  const asked: string[] = []
  const resolver: Resolver = async (hostname) => {
    asked.push(hostname)
    return answers.shift() ?? []
  }
  const lookup = vettedLookup(addressPolicy([]), resolver)

  const first = await lookupOnce(lookup, 'billing.example.com', {})
  t.same(first, { err: null, address: '93.184.215.14' }, 'the public answer is handed over')
  const rebound = await lookupOnce(lookup, 'billing.example.com', {})
  t.type(rebound.err, AddressRefusedError)
  t.equal(rebound.err?.message, 'address 10.0.0.7 is not allowed (private network)')
  t.equal(rebound.address, '', 'the rebound private answer is not')
  const mixed = await lookupOnce(lookup, 'billing.example.com', { all: true })
  t.same(mixed, { err: null, address: [{ address: '93.184.215.14', family: 4 }, { address: '2606:4700::1111', family: 6 }] }, 'only the vetted addresses of a mixed answer')
  t.same(asked, ['billing.example.com', 'billing.example.com', 'billing.example.com'], 'resolved afresh for each connection')
})

t.test('an Agent with the vetted lookup connects to the address it vetted, and to nothing else', async (t) => {
  const receiver = await startReceiver()
  t.teardown(() => receiver.close())
  // The receiver closes each connection, so every request needs a new one, and a new lookup.
  receiver.respond('/pinned', () => ({ status: 200, headers: { connection: 'close' } }))
  const answers = ['127.0.0.1', '169.254.169.254']
  const agent = vettedAgent(addressPolicy(['127.0.0.0/8']), async () => [{ address: answers.shift() ?? '127.0.0.1', family: 4 }])
  t.teardown(() => agent.close())
  // billing.invalid exists in no DNS: the request can only go where the lookup said.
  const url = receiver.url('/pinned').replace('127.0.0.1', 'billing.invalid')
  const res = await fetch(url, { method: 'POST', body: '{}', dispatcher: agent })
  t.equal(res.status, 200)
  await res.body?.cancel()
  const err: unknown = await fetch(url, { method: 'POST', body: '{}', dispatcher: agent }).then(() => undefined, (e: unknown) => e)
  t.type((err as Error).cause, AddressRefusedError, 'the rebound answer fails the request')
  t.match((err as Error).cause, { message: 'address 169.254.169.254 is not allowed (link-local)' })
  t.equal(receiver.received.length, 1, 'only the vetted connection reached the receiver')
})
