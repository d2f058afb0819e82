// A tenant whose job was lost (Redis flushed, or failed without reporting)
// does not wait forever in its transitional state.
import t from 'tap'
import { requeueStuck } from '../../src/jobs/maintenance.js'
import { jobId, OutboxRelay } from '../../src/jobs/relay.js'
import { auth, setup } from '../helpers.js'

t.test('a tenant stuck without a live job is handed a fresh one', async (t) => {
  const h = await setup(t, { STUCK_AFTER: 'PT1S' })
  const { db } = h
  // Committed and relayed, then the job vanishes from Redis before any worker ran it.
  const created = await h.app.inject({ method: 'POST', url: '/tenants', headers: auth, payload: { slug: 'lost' } })
  t.equal(created.statusCode, 202)
  await new OutboxRelay({ db, databaseUrl: h.config.databaseUrl, queues: h.queues, log: h.log }).drain()
  const row = await db.selectFrom('outbox').select('id').where('kind', '=', 'job').where('name', '=', 'provision').executeTakeFirstOrThrow()
  const job = await h.queues.lifecycle.getJob(jobId(row.id))
  t.ok(job, 'the job was in Redis')
  await job!.remove()

  t.equal(await requeueStuck(h.workerDeps, h.queues), 0, 'not before STUCK_AFTER')
  await db.updateTable('tenants').set({ updated_at: new Date(Date.now() - 5000) }).execute()
  t.equal(await requeueStuck(h.workerDeps, h.queues), 1)
  t.equal(await requeueStuck(h.workerDeps, h.queues), 0, 'once: the fresh job is pending now')

  await h.startWorkers()
  const tenant = await h.waitForState('lost', 'active')
  t.equal(tenant.schema_version, 1)
  const types = (await h.app.inject({ url: '/tenants/lost/events', headers: auth })).json().items.map((e: { type: string }) => e.type)
  t.same(types, ['CREATE', 'JOB_REQUEUED', 'EFFECTS_APPLIED'])
})
