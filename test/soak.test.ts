// Concurrent churn through HTTP, with two worker sets and a flaky billing
// receiver: afterwards every tenant is stable, its database matches its state,
// no login survives a fence, and each tenant's webhooks arrived in order.
import t from 'tap'
import { auth, setup, waitFor } from './helpers.js'
import { startReceiver } from './webhooks/receiver.js'

t.test('random concurrent lifecycle calls leave every tenant consistent', async (t) => {
  const h = await setup(t, {
    WORKER_CONCURRENCY: '4',
    WEBHOOK_RETRY_SCHEDULE: '50ms,100ms,200ms,400ms,800ms,1s,1s,1s,1s,1s',
    WEBHOOK_ALLOWED_NETWORKS: '127.0.0.0/8', // the receiver is on loopback
  })
  const receiver = await startReceiver()
  t.teardown(() => receiver.close())
  // A flaky billing: one request in four fails.
  receiver.respond('/bill', () => (Math.random() < 0.25 ? { status: 503 } : { status: 204 }))
  const ep = await h.app.inject({ method: 'POST', url: '/webhook-endpoints', headers: auth, payload: { url: receiver.url('/bill') } })
  receiver.trust('/bill', ep.json().secret)
  await h.startWorkers()
  await h.startWorkers() // a second worker process
  const N = 12
  const slugs = Array.from({ length: N }, (_, i) => `churn_${i}`)
  await Promise.all(slugs.map((slug) => h.app.inject({ method: 'POST', url: '/tenants', headers: auth, payload: { slug } })))
  const ops: Array<[string, string]> = [['PATCH', 'suspend'], ['PATCH', 'resume'], ['PATCH', 'hibernate'], ['PATCH', 'wake'], ['POST', 'credentials'], ['POST', 'rotate-credentials'], ['DELETE', ''], ['POST', 'restore']]
  const codes: Record<string, number> = {}
  const deadline = Date.now() + 10_000
  await Promise.all(slugs.map(async (slug) => {
    while (Date.now() < deadline) {
      const [method, op] = ops[Math.floor(Math.random() * ops.length)]!
      const url = op ? `/tenants/${slug}/${op}` : `/tenants/${slug}?retention=P1D`
      const res = await h.app.inject({ method: method as 'POST', url, headers: auth })
      codes[res.statusCode] = (codes[res.statusCode] ?? 0) + 1
      await new Promise((r) => setTimeout(r, Math.random() * 50))
    }
  }))
  t.same(Object.keys(codes).filter((c) => Number(c) >= 500), [], `no 5xx among ${JSON.stringify(codes)}`)
  for (const slug of slugs) {
    const tenant = await waitFor(async () => {
      const s = (await h.app.inject({ url: `/tenants/${slug}/status`, headers: auth })).json()
      return s.stable ? s : undefined
    }, 30_000)
    const db = await h.cluster.query('SELECT datallowconn FROM pg_database WHERE datname = $1', [`${h.config.tenantDbPrefix}${slug}`])
    const allow = db.rows[0]?.datallowconn
    const live = await h.db.selectFrom('leases').innerJoin('tenants', 'tenants.id', 'leases.tenant_id').select('leases.username').where('slug', '=', slug).where('revoked_at', 'is', null).execute()
    const roles = await h.cluster.query("SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname LIKE $1 || '-%' AND rolcanlogin", [`${h.config.tenantDbPrefix}${slug}`])
    const expectAllow = tenant.state === 'active'
    t.equal(allow, expectAllow, `${slug} ${tenant.state}: datallowconn ${allow}`)
    if (tenant.state !== 'active') t.equal(roles.rowCount, 0, `${slug} ${tenant.state}: no login role left (${roles.rows.map((r) => r.rolname).join(',')})`)
    const leases = new Set(live.map((l) => l.username))
    t.same(roles.rows.filter((r) => !leases.has(r.rolname)), [], `${slug}: every login role is a live lease`)
    t.not(tenant.state, 'failed', `${slug} did not fail: ${tenant.error}`)
  }
  await waitFor(async () => {
    const open = await h.db.selectFrom('webhook_deliveries').select('id').where('status', 'in', ['pending', 'delivering']).execute()
    const unfanned = await h.db.selectFrom('outbox').select('id').where('kind', '=', 'webhook').where('fanned_out_at', 'is', null).execute()
    return open.length === 0 && unfanned.length === 0 ? true : undefined
  }, 60_000)
  const failedDeliveries = await h.db.selectFrom('webhook_deliveries').select('id').where('status', '=', 'failed').execute()
  t.equal(failedDeliveries.length, 0, 'no delivery was given up')
  t.ok(receiver.received.every((r) => r.verified), 'every request verifies')
  for (const slug of slugs) {
    const tenant = (await h.db.selectFrom('tenants').select('id').where('slug', '=', slug).executeTakeFirstOrThrow()).id
    const expected = (await h.db.selectFrom('outbox').select('id').where('kind', '=', 'webhook').where('tenant_id', '=', tenant).orderBy('seq').execute()).map((r) => `msg_${r.id}`)
    const firstSuccess: string[] = []
    for (const r of receiver.received) {
      if (r.json.data.tenant.id !== tenant || r.status !== 204) continue
      const id = r.headers['webhook-id'] as string
      if (!firstSuccess.includes(id)) firstSuccess.push(id)
    }
    t.same(firstSuccess, expected, `${slug}: all ${expected.length} events delivered, in order`)
  }
})
