// Scheduled sweeps: BullMQ job schedulers that reap expired leases and
// hibernate tenants idle as Postgres sees them.
import pg from 'pg'
import t from 'tap'
import { findTenant } from '../../src/db/tenants.js'
import { hibernateIdle, scheduleMaintenance, startMaintenanceWorker } from '../../src/jobs/maintenance.js'
import { auth, setup, waitFor } from '../helpers.js'

t.test('maintenance sweeps', async (t) => {
  const h = await setup(t, { HIBERNATE_AFTER: 'PT1S', CREDENTIAL_TTL: 'PT1S', MAINTENANCE_INTERVAL: '200ms' })
  await h.startWorkers()
  for (const slug of ['idle', 'busy']) {
    t.equal((await h.app.inject({ method: 'POST', url: '/tenants', headers: auth, payload: { slug } })).statusCode, 202)
    await h.waitForState(slug, 'active')
  }

  t.test('each sweep has one schedule, however many workers register it', async (t) => {
    await Promise.all([scheduleMaintenance(h.workerDeps, h.queues), scheduleMaintenance(h.workerDeps, h.queues)])
    await scheduleMaintenance(h.workerDeps, h.queues)
    const schedulers = await h.queues.maintenance.getJobSchedulers()
    t.same(schedulers.map((s) => s.key).sort(), ['expire-retention', 'hibernate-idle', 'reap-leases'])
    t.ok(schedulers.every((s) => Number(s.every) === 200))
  })

  t.test('a tenant with no session and no new transaction for HIBERNATE_AFTER is hibernated; a busy one is not', async (t) => {
    // Long-lived login to busy, renewed by hand: the reaper must not end it before the check.
    await h.db.updateTable('tenants').set({ activity_counter: null }).execute()
    const busy = (await findTenant(h.db, 'busy'))!
    const session = new pg.Client({ connectionString: h.config.tenantClusterUrl.replace(/\/[^/]*$/, `/${busy.database_name}`) })
    await session.connect()
    t.teardown(() => session.end())
    t.equal(await hibernateIdle(h.workerDeps), 0, 'the first sweep only records the counters')
    await waitFor(async () => ((await hibernateIdle(h.workerDeps)) > 0 ? true : undefined), 10_000, () => 'the idle tenant to be hibernated')
    await h.waitForState('idle', 'hibernated')
    t.equal((await findTenant(h.db, 'busy'))?.state, 'active', 'the tenant with a session stays active')
    const events = (await h.app.inject({ url: '/tenants/idle/events', headers: auth })).json().items
    t.match(events.at(-2), { type: 'HIBERNATE', actor: 'scheduler', data: { reason: 'idle' } })
  })

  t.test('the scheduled reaper drops the role of an expired lease', async (t) => {
    const worker = startMaintenanceWorker(h.workerDeps)
    t.teardown(() => worker.close())
    await scheduleMaintenance(h.workerDeps, h.queues)
    const res = await h.app.inject({ method: 'POST', url: '/tenants/busy/credentials', headers: auth })
    t.equal(res.statusCode, 201)
    const { username, lease_id } = res.json()
    const role = await h.cluster.query('SELECT rolvaliduntil FROM pg_roles WHERE rolname = $1', [username])
    t.equal(role.rowCount, 1)
    await waitFor(
      async () => {
        const lease = await h.db.selectFrom('leases').select('revoked_at').where('id', '=', lease_id).executeTakeFirstOrThrow()
        return lease.revoked_at ?? undefined
      },
      10_000,
      () => 'the lease to be reaped',
    )
    t.equal((await h.cluster.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [username])).rowCount, 0, 'the role is gone')
  })
})
