// The outbox relay: a crash between commit and enqueue loses nothing, and a
// row handed over twice becomes one job.
import t from 'tap'
import { jobId, OutboxRelay } from '../../src/jobs/relay.js'
import { createTenant } from '../../src/lifecycle/transition.js'
import { setup } from '../helpers.js'

t.test('outbox relay', async (t) => {
  const h = await setup(t)
  const { db, queues } = h
  const relay = new OutboxRelay({ db, databaseUrl: h.config.databaseUrl, queues, log: h.log })

  t.test('a transition committed while no relay runs is queued once a relay starts', async (t) => {
    // The API process commits, then "crashes" before anything reaches Redis.
    const tenant = await createTenant(db, h.config.tenantDbPrefix, { slug: 'crashy' }, 'test')
    const row = await db.selectFrom('outbox').selectAll().where('tenant_id', '=', tenant.id).where('kind', '=', 'job').executeTakeFirstOrThrow()
    t.equal(row.relayed_at, null)
    t.equal(await queues.lifecycle.getJob(jobId(row.id)), undefined, 'nothing in BullMQ yet')

    t.equal(await relay.drain(), 2, 'the job and the webhook rows are relayed')
    const job = await queues.lifecycle.getJob(jobId(row.id))
    t.ok(job, 'the provisioning job exists')
    t.equal(job?.name, 'provision')
    t.same(job?.data, { tenantId: tenant.id, version: 1 })
    t.match(job?.id, /^ob-[0-9a-f-]{36}$/, 'deterministic job id, no colon')
    const after = await db.selectFrom('outbox').select('relayed_at').where('id', '=', row.id).executeTakeFirstOrThrow()
    t.ok(after.relayed_at, 'marked relayed')
    t.equal(await relay.drain(), 0, 'nothing left to relay')
  })

  t.test('a row relayed twice (crash after enqueue, before marking) is still one job', async (t) => {
    const tenant = await createTenant(db, h.config.tenantDbPrefix, { slug: 'twice' }, 'test')
    await relay.drain()
    await db.updateTable('outbox').set({ relayed_at: null }).where('tenant_id', '=', tenant.id).execute()
    const before = [await queues.lifecycle.getJobCounts(), await queues.webhooks.getJobCounts()]
    t.equal(await relay.drain(), 2)
    const after = [await queues.lifecycle.getJobCounts(), await queues.webhooks.getJobCounts()]
    t.same(after, before, 'BullMQ deduplicated both jobs on their ids')
  })

  t.test('a running relay picks up a commit without being asked', async (t) => {
    // Polling once a minute: only LISTEN/NOTIFY can bring the row over in time.
    const listening = new OutboxRelay({ db, databaseUrl: h.config.databaseUrl, queues, log: h.log, pollMs: 60_000 })
    await listening.start()
    t.teardown(() => listening.stop())
    await new Promise((r) => setTimeout(r, 200)) // the start-up drain is over
    const tenant = await createTenant(db, h.config.tenantDbPrefix, { slug: 'listened' }, 'test')
    const deadline = Date.now() + 1000
    let relayed = false
    while (!relayed && Date.now() < deadline) {
      const row = await db.selectFrom('outbox').select('relayed_at').where('tenant_id', '=', tenant.id).where('kind', '=', 'job').executeTakeFirstOrThrow()
      relayed = row.relayed_at !== null
      if (!relayed) await new Promise((r) => setTimeout(r, 20))
    }
    t.ok(relayed)
  })
})
