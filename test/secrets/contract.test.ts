// The SecretsBackend contract, run against both backends on the real cluster:
// issued logins connect to their tenant's database only; revocation (all, or
// with a cutoff) ends logins and sessions; expired leases are reaped; destroy
// leaves nothing; an idempotent request replays; a crash between two steps of
// an issue leaves nothing that outlives a revocation.
import t from 'tap'
import type { Tenant } from '../../src/db/schema.js'
import type { IssuedCredentials } from '../../src/secrets/backend.js'
import { auth, loginAs, setup, waitFor, type Harness } from '../helpers.js'
import { startFakeVault } from '../vault/fake-vault.js'

const MINUTE = 60_000

async function works(h: Harness, tenant: Tenant, c: IssuedCredentials, database = tenant.database_name): Promise<boolean> {
  try {
    const s = await loginAs({ ...c, host: '127.0.0.1', port: 5432, database, expires_at: c.expires_at.toISOString() })
    await s.query('SELECT 1')
    await s.end()
    return true
  } catch {
    return false
  }
}

for (const backend of ['local', 'vault'] as const) {
  t.test(`the ${backend} backend keeps the contract`, async (t) => {
    let env: Record<string, string> = {}
    let crashAfterIssue: (tenant: Tenant) => Promise<IssuedCredentials>
    if (backend === 'vault') {
      const fake = await startFakeVault()
      t.teardown(() => fake.close())
      env = { SECRETS_BACKEND: 'vault', VAULT_ADDR: fake.url, VAULT_TOKEN: fake.rootToken, CREDENTIAL_TTL: 'PT3S' }
      // Vault issued the lease; Landlord died before recording it.
      crashAfterIssue = async (tenant) => {
        const res = await fetch(`${fake.url}/v1/database/creds/${tenant.database_name}`, { headers: { 'x-vault-token': fake.rootToken } })
        const body = (await res.json()) as { lease_id: string; lease_duration: number; data: { username: string; password: string } }
        return { lease_id: body.lease_id, username: body.data.username, password: body.data.password, expires_at: new Date(Date.now() + MINUTE) }
      }
    }
    const h = await setup(t, env)
    await h.startWorkers()
    if (backend === 'local') {
      // The row was written, the role created; Landlord died before answering.
      crashAfterIssue = (tenant) => h.secrets.issue(tenant, { principal: 'crashed', ttlMs: MINUTE })
    }
    const onboard = async (slug: string) => {
      await h.app.inject({ method: 'POST', url: '/tenants', headers: auth, payload: { slug } })
      return h.waitForState(slug, 'active')
    }
    const acme = await onboard('acme')
    const globex = await onboard('globex')
    // Vault leases live CREDENTIAL_TTL (3 s here); local ones what the request asks.
    const ttlMs = backend === 'vault' ? 3000 : MINUTE

    t.test('an issued login connects to its tenant database and nowhere else', async (t) => {
      const c = await h.secrets.issue(acme, { principal: 'alice', ttlMs })
      t.ok(await works(h, acme, c))
      t.notOk(await works(h, acme, c, globex.database_name))
      t.ok(c.expires_at.getTime() > Date.now())
    })

    t.test('revokeAll ends every login and its sessions', async (t) => {
      const c = await h.secrets.issue(acme, { principal: 'alice', ttlMs })
      const session = await loginAs({ ...c, host: '127.0.0.1', port: 5432, database: acme.database_name, expires_at: '' })
      const other = await h.secrets.issue(globex, { principal: 'alice', ttlMs })
      t.ok((await h.secrets.revokeAll(acme)) >= 1)
      await t.rejects(session.query('SELECT 1'))
      t.notOk(await works(h, acme, c))
      t.ok(await works(h, globex, other), "another tenant's login is untouched")
    })

    t.test('revokeAll with a cutoff keeps what was issued after it', async (t) => {
      const before = await h.secrets.issue(acme, { principal: 'alice', ttlMs })
      const cutoff = new Date()
      await new Promise((r) => setTimeout(r, 20))
      const after = await h.secrets.issue(acme, { principal: 'alice', ttlMs })
      t.equal(await h.secrets.revokeAll(acme, { issuedBefore: cutoff }), 1)
      t.notOk(await works(h, acme, before))
      t.ok(await works(h, acme, after))
      await h.secrets.revokeAll(acme)
    })

    t.test('an idempotent request replays the same live lease', async (t) => {
      const a = await h.secrets.issue(acme, { principal: 'alice', ttlMs, idempotencyKey: 'k' })
      const b = await h.secrets.issue(acme, { principal: 'alice', ttlMs, idempotencyKey: 'k' })
      t.same(b, a)
      const c = await h.secrets.issue(acme, { principal: 'bob', ttlMs, idempotencyKey: 'k' })
      t.not(c.lease_id, a.lease_id, 'keys are per principal')
      await h.secrets.revokeAll(acme)
    })

    t.test('a crash between issuing and answering leaves nothing a revocation misses', async (t) => {
      const c = await crashAfterIssue(acme)
      t.ok(await works(h, acme, c))
      await h.secrets.revokeAll(acme)
      t.notOk(await works(h, acme, c))
    })

    t.test('expired leases stop working and are reaped', async (t) => {
      const c = await h.secrets.issue(globex, { principal: 'alice', ttlMs: 1000 })
      await waitFor(async () => (c.expires_at.getTime() < Date.now() ? true : undefined), 10_000)
      // Vault revokes at expiry by itself; the reaper ends what is left and records it.
      await waitFor(async () => ((await h.secrets.reapExpired()) > 0 ? true : undefined), 10_000)
      await waitFor(async () => ((await works(h, globex, c)) ? undefined : true), 10_000)
      t.notOk(await works(h, globex, c), 'the expired login no longer connects')
      const lease = await h.db.selectFrom('leases').select('revoked_at').where('username', '=', c.username).executeTakeFirstOrThrow()
      t.not(lease.revoked_at, null, 'its lease is recorded as revoked')
      await waitFor(async () => ((await h.cluster.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [c.username])).rowCount ? undefined : true), 10_000)
      t.pass('and its role is gone')
    })

    t.test('destroy revokes everything and destroys the key material', async (t) => {
      const c = await h.secrets.issue(globex, { principal: 'alice', ttlMs })
      const receipt = await h.secrets.destroy(globex)
      t.ok(receipt.leases_revoked >= 1)
      t.equal(receipt.key_destroyed, true)
      t.notOk(await works(h, globex, c))
      t.equal((await h.secrets.destroy(globex)).key_destroyed, false, 'twice is fine: nothing left')
    })
  })
}
