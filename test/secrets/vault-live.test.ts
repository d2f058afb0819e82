// Against a real Vault, when VAULT_ADDR is set (docker compose up -d vault;
// eval "$(scripts/vault-dev-setup)"): provisioning, credentials that connect,
// suspension that revokes them, and a wipe that deletes the role and the key.
// Without VAULT_ADDR there is no Vault to run against, and the file says so.
import t from 'tap'
import { auth, loginAs, setup, type Creds } from '../helpers.js'

const addr = process.env.VAULT_ADDR
const authEnv: Record<string, string> = process.env.VAULT_ROLE_ID
  ? { VAULT_ROLE_ID: process.env.VAULT_ROLE_ID, VAULT_SECRET_ID: process.env.VAULT_SECRET_ID ?? '' }
  : { VAULT_TOKEN: process.env.VAULT_TOKEN ?? '' }

t.test('a real Vault', { skip: addr ? false : 'VAULT_ADDR is not set: no live Vault to test against' }, async (t) => {
  const h = await setup(t, {
    SECRETS_BACKEND: 'vault',
    VAULT_ADDR: addr!,
    ...authEnv,
    ...(process.env.VAULT_DB_MOUNT ? { VAULT_DB_MOUNT: process.env.VAULT_DB_MOUNT } : {}),
    ...(process.env.VAULT_TRANSIT_MOUNT ? { VAULT_TRANSIT_MOUNT: process.env.VAULT_TRANSIT_MOUNT } : {}),
  })
  await h.startWorkers()
  await h.app.inject({ method: 'POST', url: '/tenants', headers: auth, payload: { slug: 'live' } })
  await h.waitForState('live', 'active', 60_000)
  const res = await h.app.inject({ method: 'POST', url: '/tenants/live/credentials', headers: auth })
  t.equal(res.statusCode, 201)
  const c: Creds = res.json()
  const s = await loginAs(c)
  t.same((await s.query('SELECT count(*)::int AS n FROM users')).rows, [{ n: 0 }], 'the Vault login reads the tenant schema')
  await h.app.inject({ method: 'PATCH', url: '/tenants/live/suspend', headers: auth, payload: {} })
  await h.waitForState('live', 'suspended', 60_000)
  await t.rejects(s.query('SELECT 1'), 'its session was ended')
  await t.rejects(loginAs(c).then((x) => x.end()), 'the revoked login no longer connects')
  await h.app.inject({ method: 'DELETE', url: '/tenants/live?retention=PT0S', headers: auth })
  const wiped = await h.waitForState('live', 'wiped', 60_000)
  const receipt = await h.db.selectFrom('tenant_events').select('data').where('tenant_id', '=', wiped.id).where('type', '=', 'WIPE_RECEIPT').executeTakeFirstOrThrow()
  t.match(receipt.data, { database: { dropped: true }, key_material: 'destroyed' })
})
