// Scheduled sweeps, run by the real BullMQ job schedulers: expired leases are
// reaped and tenants idle as Postgres sees them are hibernated.
import pg from 'pg'
import t from 'tap'
import { withDatabase } from '../../src/db/index.js'
import { findTenant } from '../../src/db/tenants.js'
import { scheduleMaintenance } from '../../src/jobs/maintenance.js'
import { auth, setup, waitFor } from '../helpers.js'

t.test('maintenance sweeps', async (t) => {
  const h = await setup(t, { HIBERNATE_AFTER: 'PT1S', CREDENTIAL_TTL: 'PT1S', MAINTENANCE_INTERVAL: '200ms' })
  await h.startWorkers()
  const onboard = async (slug: string) => {
    t.equal((await h.app.inject({ method: 'POST', url: '/tenants', headers: auth, payload: { slug } })).statusCode, 202)
    return h.waitForState(slug, 'active')
  }

  t.test('each sweep has one schedule, however many workers register it', async (t) => {
    await Promise.all([scheduleMaintenance(h.workerDeps, h.queues), scheduleMaintenance(h.workerDeps, h.queues)])
    const schedulers = await h.queues.maintenance.getJobSchedulers()
    t.same(schedulers.map((s) => s.key).sort(), ['expire-retention', 'fleet-resume', 'hibernate-idle', 'prune', 'reap-leases', 'requeue-stuck', 'webhook-sweep'])
    t.ok(schedulers.every((s) => Number(s.every) === 200))
  })

  t.test('a tenant with no session and no new transaction for HIBERNATE_AFTER is hibernated; one in use is not', async (t) => {
    const busy = await onboard('busy')
    // An application holding a connection to its database: Postgres sees the tenant in use.
    const session = new pg.Client({ connectionString: withDatabase(h.config.tenantClusterUrl, busy.database_name) })
    await session.connect()
    t.teardown(() => session.end())
    await onboard('idle')
    await h.waitForState('idle', 'hibernated', 15_000)
    t.equal((await findTenant(h.db, 'busy'))?.state, 'active', 'the tenant in use stays active')
    const events = (await h.app.inject({ url: '/tenants/idle/events', headers: auth })).json().items
    const active = events.find((e: { type: string; to_state: string }) => e.to_state === 'active')
    const hibernate = events.find((e: { type: string }) => e.type === 'HIBERNATE')
    t.match(hibernate, { actor: 'scheduler', data: { reason: 'idle' } })
    const quiet = Date.parse(hibernate.created_at) - Date.parse(active.created_at)
    t.ok(quiet >= 1000, `not before HIBERNATE_AFTER (${quiet} ms after it became active)`)
  })

  t.test('the reaper drops the role of an expired lease', async (t) => {
    const res = await h.app.inject({ method: 'POST', url: '/tenants/busy/credentials', headers: auth })
    t.equal(res.statusCode, 201)
    const { username, lease_id } = res.json()
    t.equal((await h.cluster.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [username])).rowCount, 1)
    await waitFor(
      async () => (await h.db.selectFrom('leases').select('revoked_at').where('id', '=', lease_id).executeTakeFirstOrThrow()).revoked_at ?? undefined,
      10_000,
      () => 'the lease to be reaped',
    )
    t.equal((await h.cluster.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [username])).rowCount, 0, 'the role is gone')
  })
})
