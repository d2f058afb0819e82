// The transition service against the real registry: one transaction per
// change, refused events, the concurrent race, and stale worker reports.
import t from 'tap'
import { LandlordError } from '../../src/errors.js'
import { placeLegalHold, releaseLegalHold } from '../../src/lifecycle/operations.js'
import { applyEvent, createTenant } from '../../src/lifecycle/transition.js'
import { setup } from '../helpers.js'

t.test('transition service', async (t) => {
  const h = await setup(t)
  const { db } = h
  const prefix = h.config.tenantDbPrefix

  // Moves a tenant to active the way a worker would, without touching the cluster.
  async function activeTenant(slug: string) {
    const tenant = await createTenant(db, prefix, { slug }, 'test')
    return (await applyEvent(db, tenant.id, { type: 'EFFECTS_APPLIED', schemaVersion: 1 }, { actor: 'worker' }))!
  }

  t.test('creating a tenant writes the row, its first history event and its outbox rows together', async (t) => {
    const tenant = await createTenant(db, prefix, { slug: 'initial', plan: 'pro' }, 'alice')
    t.match(tenant, { state: 'provisioning', version: 1, database_name: `${prefix}initial`, owner_role: `${prefix}initial` })
    const events = await db.selectFrom('tenant_events').selectAll().where('tenant_id', '=', tenant.id).execute()
    t.equal(events.length, 1)
    t.match(events, [{ type: 'CREATE', to_state: 'provisioning', actor: 'alice' }])
    const outbox = await db.selectFrom('outbox').selectAll().where('tenant_id', '=', tenant.id).orderBy('seq').execute()
    t.equal(outbox.length, 2)
    t.match(
      outbox.map((r) => [r.kind, r.name, r.payload]),
      [
        ['webhook', 'tenant.created', { type: 'tenant.created', data: { tenant: { id: tenant.id, slug: 'initial', plan: 'pro' } } }],
        ['job', 'provision', { tenantId: tenant.id, version: 1 }],
      ],
    )
  })

  t.test('a refused event is a 409 listing the allowed events, and writes nothing', async (t) => {
    const tenant = await activeTenant('refused')
    const before = await db.selectFrom('outbox').select('id').execute()
    const err = await applyEvent(db, tenant.id, { type: 'RESUME' }, { actor: 'test' }).catch((e: unknown) => e)
    t.ok(err instanceof LandlordError)
    t.match(err, {
      status: 409,
      code: 'LANDLORD_TRANSITION_NOT_ALLOWED',
      extra: { state: 'active', allowed_events: ['SUSPEND', 'HIBERNATE', 'DECOMMISSION'] },
    })
    const after = await db.selectFrom('tenants').selectAll().where('id', '=', tenant.id).executeTakeFirstOrThrow()
    t.equal(after.version, tenant.version)
    t.equal((await db.selectFrom('outbox').select('id').execute()).length, before.length)
  })

  t.test('an accepted event moves state, bumps the version, appends history and queues the job', async (t) => {
    const tenant = await activeTenant('accepted')
    const next = await applyEvent(db, 'accepted', { type: 'SUSPEND', reason: 'unpaid' }, { actor: 'bob' })
    t.match(next, { state: 'suspending', version: tenant.version + 1, operation: 'suspend' })
    const last = await db.selectFrom('tenant_events').selectAll().where('tenant_id', '=', tenant.id).orderBy('id', 'desc').executeTakeFirstOrThrow()
    t.match(last, { type: 'SUSPEND', from_state: 'active', to_state: 'suspending', actor: 'bob', data: { reason: 'unpaid' } })
    const job = await db.selectFrom('outbox').selectAll().where('tenant_id', '=', tenant.id).where('kind', '=', 'job').orderBy('seq', 'desc').executeTakeFirstOrThrow()
    t.match(job, { name: 'suspend', payload: { tenantId: tenant.id, version: tenant.version + 1 } })
  })

  t.test('two concurrent conflicting transitions: exactly one wins, the other is a 409', async (t) => {
    for (let round = 0; round < 5; round++) {
      const tenant = await activeTenant(`race_${round}`)
      const results = await Promise.allSettled([
        applyEvent(db, tenant.id, { type: 'SUSPEND' }, { actor: 'a' }),
        applyEvent(db, tenant.id, { type: 'HIBERNATE' }, { actor: 'b' }),
      ])
      const won = results.filter((r) => r.status === 'fulfilled')
      const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected')
      t.equal(won.length, 1, `round ${round}: one winner`)
      t.equal(lost.length, 1, `round ${round}: one loser`)
      t.equal((lost[0]?.reason as LandlordError).status, 409)
      const history = await db.selectFrom('tenant_events').select('type').where('tenant_id', '=', tenant.id).execute()
      t.equal(history.length, 3, 'CREATE, EFFECTS_APPLIED and the one winner')
    }
  })

  t.test('a worker report for a state the tenant has left is ignored, not applied', async (t) => {
    const tenant = await activeTenant('stale')
    const ignored = await applyEvent(db, tenant.id, { type: 'EFFECTS_APPLIED' }, { actor: 'worker', expectState: 'provisioning' })
    t.equal(ignored, undefined)
    const row = await db.selectFrom('tenants').selectAll().where('id', '=', tenant.id).executeTakeFirstOrThrow()
    t.equal(row.version, tenant.version)
  })

  t.test('a wipe that failed cannot be retried past a legal hold', async (t) => {
    const tenant = await activeTenant('held')
    await applyEvent(db, tenant.id, { type: 'DECOMMISSION', retentionMs: 0 }, { actor: 'test' })
    await applyEvent(db, tenant.id, { type: 'EFFECTS_FAILED', error: 'disk full' }, { actor: 'worker' })
    await placeLegalHold(db, tenant.id, 'subpoena', 'legal')
    await t.rejects(applyEvent(db, tenant.id, { type: 'RETRY' }, { actor: 'test' }), { status: 409, code: 'LANDLORD_LEGAL_HOLD' })
    await releaseLegalHold(db, tenant.id, 'legal')
    t.match(await applyEvent(db, tenant.id, { type: 'RETRY' }, { actor: 'test' }), { state: 'wiping' })
  })

  t.test('history is append-only, even for the application role', async (t) => {
    await t.rejects(db.updateTable('tenant_events').set({ actor: 'mallory' }).execute(), /append-only/)
    await t.rejects(db.deleteFrom('tenant_events').execute(), /append-only/)
  })

  t.test('an unknown tenant is a 404', async (t) => {
    await t.rejects(applyEvent(db, 'ghost', { type: 'SUSPEND' }, { actor: 'x' }), { status: 404, code: 'LANDLORD_TENANT_NOT_FOUND' })
  })
})
