// The audit trail: mutating requests, transitions and credential issues are
// recorded with who, what, which tenant and from where; the chain verifies,
// and an edit made with the triggers disabled, or a deleted row, is named by
// `landlord audit verify`.
import pg from 'pg'
import t from 'tap'
import { verifyAudit } from '../../src/db/audit.js'
import { auth, setup, spawnLandlord } from '../helpers.js'

t.test('audit trail', async (t) => {
  const h = await setup(t)
  const { app, db } = h
  const call = (method: 'GET' | 'POST' | 'PATCH' | 'DELETE' | 'PUT', url: string, headers: Record<string, string> = auth, payload?: object) =>
    app.inject({ method, url, headers, remoteAddress: '203.0.113.7', ...(payload ? { payload } : {}) })
  const workers = await h.startWorkers()
  t.equal((await call('POST', '/tenants', auth, { slug: 'audited' })).statusCode, 202)
  const tenant = await h.waitForState('audited', 'active')
  t.equal((await call('POST', '/tenants/audited/credentials')).statusCode, 201)
  t.equal((await call('POST', '/principals', auth, { name: 'reader', scopes: ['tenants:read'] })).statusCode, 201)
  const key = (await call('POST', '/principals/reader/keys', auth, {})).json<{ key: string; id: string }>()
  t.equal((await call('PATCH', '/tenants/audited/suspend', { authorization: `Bearer ${key.key}` })).statusCode, 403)
  await workers.stop()

  await t.test('requests, transitions and credential issues are in the trail', async (t) => {
    const rows = (await call('GET', '/audit?tenant=audited')).json<{ items: Array<Record<string, unknown>> }>().items
    const actions = rows.map((r) => r.action)
    t.ok(actions.includes('issueCredentials'), 'the credential issue')
    t.ok(actions.includes('CREATE') && actions.includes('EFFECTS_APPLIED'), 'the transitions')
    t.match(rows.find((r) => r.action === 'issueCredentials'), {
      principal: 'admin', tenant: 'audited', tenant_id: tenant.id, route: 'POST /tenants/:id/credentials', status: 201, outcome: 'ok', source: '203.0.113.7', request_id: String,
    })
    const refused = (await call('GET', '/audit?principal=reader')).json<{ items: Array<Record<string, unknown>> }>().items
    t.match(refused, [{ action: 'suspendTenant', status: 403, outcome: 'refused', key_id: key.id, tenant: null }])
    t.notMatch(JSON.stringify(rows), /password|landlord_[A-Za-z0-9_-]{43}/, 'no secret in the trail')
    t.equal((await call('GET', '/audit', { authorization: `Bearer ${key.key}` })).statusCode, 403, 'admin only')
    // An admin granted no tenant sees the rows of no tenant only.
    t.equal((await call('POST', '/principals', auth, { name: 'small_admin', scopes: ['admin'] })).statusCode, 201)
    const small = { authorization: `Bearer ${(await call('POST', '/principals/small_admin/keys', auth, {})).json<{ key: string }>().key}` }
    t.equal((await call('GET', '/audit?tenant=audited', small)).statusCode, 404)
    const seen = (await call('GET', '/audit?limit=500', small)).json<{ items: Array<{ tenant_id: string | null }> }>().items
    t.ok(seen.length > 0)
    t.ok(seen.every((r) => r.tenant_id === null), "no row of a tenant it is not granted")
    const events = (await call('GET', '/tenants/audited/events')).json<{ items: Array<{ actor: string }> }>().items
    t.equal(events[0]?.actor, 'admin', "a tenant's events show who acted")
  })

  await t.test('the control-plane role cannot change the trail', async (t) => {
    await t.rejects(db.updateTable('audit_log').set({ outcome: 'ok' }).execute(), /append-only/)
    await t.rejects(db.deleteFrom('audit_log').execute(), /append-only/)
    const report = await verifyAudit(db)
    t.ok(report.rows > 5)
    t.equal(report.broken, undefined, 'the chain verifies')
  })

  await t.test('an edit with the triggers disabled, and a deleted row, are named by audit verify', async (t) => {
    const env = { ...h.env, LOG_LEVEL: 'silent' }
    const ok = spawnLandlord(['audit', 'verify'], env)
    t.equal(await ok.code, 0, ok.err())
    t.match(ok.out(), /audit chain intact: \d+ rows/)
    const admin = new pg.Client({ connectionString: h.config.databaseUrl })
    await admin.connect()
    t.teardown(() => admin.end())
    await admin.query('ALTER TABLE audit_log DISABLE TRIGGER USER')
    await admin.query(`UPDATE audit_log SET principal = 'someone_else' WHERE seq = 3`)
    t.match((await db.selectFrom('audit_log').select('principal').where('seq', '=', '3').executeTakeFirstOrThrow()).principal, 'someone_else', 'the edit went through')
    const edited = spawnLandlord(['audit', 'verify'], env)
    t.equal(await edited.code, 1)
    t.match(edited.err(), /audit chain broken at row 3: its hash does not match its content/)
    const original = (await verifyAudit(db)).rows
    await admin.query('DELETE FROM audit_log WHERE seq = 3')
    const deleted = spawnLandlord(['audit', 'verify'], env)
    t.equal(await deleted.code, 1)
    t.match(deleted.err(), /audit chain broken at row 4: a row before it is missing \(seq 3\)/)
    t.equal((await verifyAudit(db)).rows, original - 1)
    await admin.query('ALTER TABLE audit_log ENABLE TRIGGER USER')
  })
})
