// The prune sweep deletes only what has served its purpose.
import t from 'tap'
import { prune } from '../../src/jobs/maintenance.js'
import { auth, setup, waitFor } from '../helpers.js'
import { startReceiver } from '../webhooks/receiver.js'

t.test('prune keeps history and anything unfinished', async (t) => {
  const h = await setup(t, { HISTORY_RETENTION: 'P1D', WEBHOOK_ALLOWED_NETWORKS: '127.0.0.0/8' })
  const { db, app } = h
  const receiver = await startReceiver()
  t.teardown(() => receiver.close())
  await app.inject({ method: 'POST', url: '/webhook-endpoints', headers: auth, payload: { url: receiver.url('/ok') } })
  await h.startWorkers()
  await app.inject({ method: 'POST', url: '/tenants', headers: { ...auth, 'idempotency-key': 'old-key' }, payload: { slug: 'aged' } })
  await h.waitForState('aged', 'active')
  await waitFor(async () => (receiver.received.length >= 2 ? true : undefined))
  await waitFor(async () => {
    const d = await db.selectFrom('webhook_deliveries').select('status').where('status', '!=', 'succeeded').execute()
    return d.length === 0 ? true : undefined
  })

  t.equal(await prune(h.workerDeps), 0, 'nothing is old enough yet')

  // Two days pass. One more delivery is still pending, and one outbox row is not relayed yet.
  const old = new Date(Date.now() - 2 * 86_400_000)
  await db.updateTable('outbox').set({ created_at: old }).execute()
  await db.updateTable('webhook_deliveries').set({ created_at: old }).execute()
  await db.updateTable('idempotency_keys').set({ created_at: old }).execute()
  const pending = await db.selectFrom('webhook_deliveries').select(['id', 'event_id']).orderBy('seq').executeTakeFirstOrThrow()
  await db.updateTable('webhook_deliveries').set({ status: 'pending', next_attempt_at: new Date(Date.now() + 3_600_000) }).where('id', '=', pending.id).execute()
  const unrelayed = await db.selectFrom('outbox').select('id').where('kind', '=', 'job').executeTakeFirstOrThrow()
  await db.updateTable('outbox').set({ relayed_at: null }).where('id', '=', unrelayed.id).execute()
  const historyBefore = (await db.selectFrom('tenant_events').select('id').execute()).length

  const deliveriesBefore = (await db.selectFrom('webhook_deliveries').select('id').execute()).length
  const outboxBefore = (await db.selectFrom('outbox').select('id').execute()).length
  // 1 key, every delivery but the pending one, every outbox row but the pending delivery's and the unrelayed one.
  t.equal(await prune(h.workerDeps), 1 + (deliveriesBefore - 1) + (outboxBefore - 2))
  t.equal((await db.selectFrom('idempotency_keys').select('key').execute()).length, 0, 'expired idempotency keys are gone')
  const deliveries = await db.selectFrom('webhook_deliveries').select('id').execute()
  t.same(deliveries.map((d) => d.id), [pending.id], 'only the pending delivery is left')
  t.equal((await db.selectFrom('webhook_attempts').select('id').where('delivery_id', '!=', pending.id).execute()).length, 0)
  const outbox = (await db.selectFrom('outbox').select('id').execute()).map((o) => o.id).sort()
  t.same(outbox, [pending.event_id, unrelayed.id].sort(), 'outbox rows still needed are kept')
  t.equal((await db.selectFrom('tenant_events').select('id').execute()).length, historyBefore, 'tenant history is never pruned')
})
