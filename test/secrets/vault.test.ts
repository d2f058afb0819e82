// The Vault backend through the API, against the in-repo fake of Vault's HTTP
// API, which runs the creation and revocation statements against the real
// Postgres: issued logins really connect, revoked ones really stop working.
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import t from 'tap'
import { compose } from '../../src/compose.js'
import { loadConfig } from '../../src/config.js'
import { migrateToVault } from '../../src/secrets/migrate.js'
import { ADMIN_KEY, auth, loginAs, PG_URL, setup, waitFor, type Creds, type Harness } from '../helpers.js'
import { startFakeVault, type FakeVault } from '../vault/fake-vault.js'

const run = promisify(execFile)

async function credentials(h: Harness, slug: string, headers: Record<string, string> = {}) {
  return h.app.inject({ method: 'POST', url: `/tenants/${slug}/credentials`, headers: { ...auth, ...headers } })
}

async function onboard(h: Harness, slug: string) {
  const res = await h.app.inject({ method: 'POST', url: '/tenants', headers: auth, payload: { slug } })
  if (res.statusCode !== 202) throw new Error(`POST /tenants ${slug}: ${res.statusCode} ${res.body}`)
  return h.waitForState(slug, 'active')
}

async function loginWorks(c: Creds): Promise<boolean> {
  try {
    const s = await loginAs(c)
    await s.query('SELECT count(*) FROM users')
    await s.end()
    return true
  } catch {
    return false
  }
}

function vaultEnv(fake: FakeVault): Record<string, string> {
  return { SECRETS_BACKEND: 'vault', VAULT_ADDR: fake.url, VAULT_ROLE_ID: fake.approle.roleId, VAULT_SECRET_ID: fake.approle.secretId }
}

t.test('the Vault backend', async (t) => {
  const fake = await startFakeVault()
  t.teardown(() => fake.close())
  const h = await setup(t, vaultEnv(fake))
  await h.startWorkers()
  const prefix = h.config.tenantDbPrefix
  const acme = await onboard(h, 'acme')
  const issued: Creds[] = []

  t.test('provisioning makes a Vault role and a transit key; the data key is wrapped by it', async (t) => {
    t.ok(fake.state.roles.has(acme.database_name), 'database/roles/<tenant database>')
    t.ok(fake.state.keys.has(acme.database_name), 'transit/keys/<tenant database>')
    const key = await h.db.selectFrom('tenant_keys').select('wrapped_key').where('tenant_id', '=', acme.id).executeTakeFirstOrThrow()
    t.match(key.wrapped_key?.toString(), /^vault:v1:/)
    const connection = (await h.app.inject({ url: '/tenants/acme/connection', headers: auth })).json()
    t.match(connection.credentials, { source: 'vault', path: `database/creds/${acme.database_name}` })
    t.notOk(JSON.stringify(connection).includes('password'))
  })

  t.test("credentials come from Vault, connect to the tenant's database, and replay with a key", async (t) => {
    const res = await credentials(h, 'acme', { 'idempotency-key': 'vault-k1' })
    t.equal(res.statusCode, 201)
    const c: Creds = res.json()
    issued.push(c)
    t.match(c.lease_id, new RegExp(`^database/creds/${acme.database_name}/`), "Vault's lease id")
    t.match(c.username, new RegExp(`^${acme.owner_role}-`), "named like Landlord's own logins")
    t.ok(await loginWorks(c), 'the login connects and reads the tenant schema')
    const again = await credentials(h, 'acme', { 'idempotency-key': 'vault-k1' })
    t.same(again.json(), res.json(), 'the same key replays the same lease')
    const row = await h.db.selectFrom('leases').selectAll().where('external_id', '=', c.lease_id).executeTakeFirstOrThrow()
    t.match(row.secret?.toString(), /^vault:v1:/, 'only transit ciphertext is kept')
    t.notOk(row.secret?.toString().includes(c.password))
  })

  t.test('rotation revokes the leases issued before it and ends their sessions', async (t) => {
    const old: Creds = (await credentials(h, 'acme')).json()
    const session = await loginAs(old)
    t.equal((await h.app.inject({ method: 'POST', url: '/tenants/acme/rotate-credentials', headers: auth })).statusCode, 202)
    await waitFor(async () => ((await loginWorks(old)) ? undefined : true))
    await t.rejects(session.query('SELECT 1'), 'the open session was ended')
    const fresh: Creds = (await credentials(h, 'acme')).json()
    t.ok(await loginWorks(fresh), 'new credentials work after the rotation')
    issued.push(fresh)
  })

  t.test('suspend revokes every lease and ends sessions; resume issues again from the kept role', async (t) => {
    const c: Creds = (await credentials(h, 'acme')).json()
    const session = await loginAs(c)
    await h.app.inject({ method: 'PATCH', url: '/tenants/acme/suspend', headers: auth, payload: {} })
    await h.waitForState('acme', 'suspended')
    await t.rejects(session.query('SELECT 1'), 'the session was ended')
    t.notOk(await loginWorks(c))
    t.equal([...fake.state.leases.values()].filter((l) => l.role === acme.database_name).length, 0, 'no live lease in Vault')
    const locked = await credentials(h, 'acme')
    t.equal(locked.statusCode, 423)
    t.match(locked.json(), { code: 'LANDLORD_TENANT_LOCKED', state: 'suspended' })
    await h.app.inject({ method: 'PATCH', url: '/tenants/acme/resume', headers: auth })
    await h.waitForState('acme', 'active')
    const after: Creds = (await credentials(h, 'acme')).json()
    t.ok(await loginWorks(after))
    issued.push(after)
  })

  t.test('a sealed Vault is a 503 with Retry-After, reported by /readyz, and Landlord recovers when it is unsealed', async (t) => {
    fake.seal()
    const res = await credentials(h, 'acme')
    t.equal(res.statusCode, 503)
    t.equal(res.headers['retry-after'], '5')
    t.match(res.json(), { code: 'LANDLORD_VAULT_UNAVAILABLE' })
    t.notOk(res.body.includes(fake.rootToken))
    const ready = await h.app.inject({ url: '/readyz' })
    t.equal(ready.statusCode, 503)
    t.match(ready.json(), { checks: { secrets: 'failing' }, secrets_backend: 'vault' })
    fake.unseal()
    t.equal((await credentials(h, 'acme')).statusCode, 201)
    t.equal((await h.app.inject({ url: '/readyz' })).statusCode, 200)
  })

  t.test('wipe revokes everything, deletes the role and the transit key, and says so', async (t) => {
    await h.app.inject({ method: 'DELETE', url: '/tenants/acme?retention=PT0S', headers: auth })
    const wiped = await h.waitForState('acme', 'wiped')
    t.notOk(fake.state.roles.has(acme.database_name), 'the Vault role is deleted')
    t.notOk(fake.state.keys.has(acme.database_name), 'the transit key is deleted')
    const receipt = await h.db.selectFrom('tenant_events').select('data').where('tenant_id', '=', wiped.id).where('type', '=', 'WIPE_RECEIPT').executeTakeFirstOrThrow()
    t.match(receipt.data, {
      database: { dropped: true },
      key_material: 'destroyed',
      secrets_removed: {
        leases: `revoked every lease under database/creds/${acme.database_name}`,
        role: `deleted database/roles/${acme.database_name}`,
        transit_key: `deleted transit/keys/${acme.database_name} (deletion_allowed set first)`,
      },
    })
    const left = await h.cluster.query('SELECT rolname FROM pg_roles WHERE rolname LIKE $1', [`${prefix.replace(/_/g, '\\_')}acme%`])
    t.same(left.rows, [], 'no login of the tenant is left')
  })

  t.test('no tenant secret is in the control database', async (t) => {
    const url = new URL(h.config.databaseUrl)
    const { stdout } = await run('pg_dump', ['--no-owner', '-h', url.hostname, '-p', url.port || '5432', '-U', url.username || 'postgres', url.pathname.slice(1)], {
      maxBuffer: 64 * 1024 * 1024,
    })
    t.ok(stdout.includes('tenant_keys'), 'the dump is of the control database')
    for (const c of issued) t.notOk(stdout.includes(c.password), `the password of ${c.username} is nowhere in it`)
  })
})

t.test('start-up checks', async (t) => {
  const fake = await startFakeVault({ approleCapabilities: { 'transit/keys/*': ['read'] } })
  t.teardown(() => fake.close())
  const config = loadConfig({
    DATABASE_URL: PG_URL,
    TENANT_CLUSTER_URL: PG_URL,
    LANDLORD_ADMIN_KEY: ADMIN_KEY,
    LOG_LEVEL: 'silent',
    ...vaultEnv(fake),
  })
  await t.rejects(compose(config, { api: false, workers: false, prepare: false }), /lacks "create", "update", "delete" on transit\/keys\//, 'a missing capability is named')
  fake.seal()
  await t.rejects(compose(config, { api: false, workers: false, prepare: false }), /sealed/)
})

t.test('secrets migrate --to vault moves tenants made with the local backend, once', async (t) => {
  const h = await setup(t)
  await h.startWorkers()
  const old = await onboard(h, 'legacy')
  const fake = await startFakeVault()
  t.teardown(() => fake.close())
  const config = loadConfig({ ...Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith('NEVER'))), ...envOf(h), ...vaultEnv(fake) })
  const vault = await compose(config, { api: false, workers: false, prepare: false })
  t.teardown(() => vault.close())
  const first = await migrateToVault(vault.db, vault.secrets, h.workerDeps.masterKey, () => {})
  t.match(first, { total: 1, moved: 1 })
  const key = await h.db.selectFrom('tenant_keys').select('wrapped_key').where('tenant_id', '=', old.id).executeTakeFirstOrThrow()
  t.match(key.wrapped_key?.toString(), /^vault:v1:/)
  t.ok(fake.state.roles.has(old.database_name))
  t.match(await migrateToVault(vault.db, vault.secrets, h.workerDeps.masterKey, () => {}), { total: 1, moved: 0, already: 1 }, 'a second run changes nothing')
  const c = await vault.secrets.issue(old, { principal: 'admin', ttlMs: 60_000 })
  t.ok(await loginWorks({ ...c, host: '127.0.0.1', port: 5432, database: old.database_name, expires_at: c.expires_at.toISOString() }))
})

/** The environment a harness was built from, for a second instance on the same databases. */
function envOf(h: Harness): Record<string, string> {
  return {
    DATABASE_URL: h.config.databaseUrl,
    TENANT_CLUSTER_URL: h.config.tenantClusterUrl,
    TENANT_DB_PREFIX: h.config.tenantDbPrefix,
    QUEUE_PREFIX: h.config.queuePrefix,
    LANDLORD_ADMIN_KEY: ADMIN_KEY,
    LANDLORD_MASTER_KEY: h.workerDeps.masterKey.toString('base64'),
    LOG_LEVEL: 'silent',
  }
}

t.test('the token is renewed, and with AppRole Landlord logs in again once renewal is refused', async (t) => {
  const fake = await startFakeVault({ approle: { tokenTtl: 2, tokenMaxTtl: 3 } })
  t.teardown(() => fake.close())
  const h = await setup(t, vaultEnv(fake))
  await h.startWorkers()
  await onboard(h, 'renewed')
  const logins = () => fake.state.requests.filter((r) => r.path.endsWith('auth/approle/login') && r.status === 200).length
  const renewals = () => fake.state.requests.filter((r) => r.path.endsWith('auth/token/renew-self')).length
  await waitFor(async () => (renewals() >= 1 ? true : undefined), 10_000)
  await waitFor(async () => (logins() >= 2 ? true : undefined), 15_000)
  t.ok(renewals() >= 1, 'renewed before it expired')
  t.ok(logins() >= 2, 'logged in again past the max TTL')
  const res = await credentials(h, 'renewed')
  t.equal(res.statusCode, 201, 'and still issues credentials')
  t.notOk(fake.state.requests.some((r) => JSON.stringify(r).includes(fake.approle.secretId)), 'the secret id is in no request record')
})

t.test('docs/production.md shows the policy scripts/vault-dev-setup applies', async (t) => {
  const { readFile } = await import('node:fs/promises')
  const { ROOT } = await import('../helpers.js')
  const policy = await readFile(`${ROOT}/docs/vault-policy.hcl`, 'utf8')
  const production = await readFile(`${ROOT}/docs/production.md`, 'utf8')
  t.ok(production.includes(`\`\`\`hcl\n${policy.trimEnd()}\n\`\`\``))
})

t.test('VAULT_NAMESPACE keeps everything in that namespace', async (t) => {
  const fake = await startFakeVault()
  t.teardown(() => fake.close())
  const h = await setup(t, { ...vaultEnv(fake), VAULT_TOKEN: fake.rootToken, VAULT_ROLE_ID: '', VAULT_SECRET_ID: '', VAULT_NAMESPACE: 'team-a' })
  await h.startWorkers()
  const tenant = await onboard(h, 'spaced')
  t.ok(fake.state.namespace('team-a').roles.has(tenant.database_name), 'the role is in the namespace')
  t.ok(fake.state.namespace('team-a').keys.has(tenant.database_name), 'so is the transit key')
  t.notOk(fake.state.roles.has(tenant.database_name), 'and not in the root namespace')
  t.equal((await credentials(h, 'spaced')).statusCode, 201)
})

t.test('a fence that cannot reach Vault never reports the stable state', async (t) => {
  const fake = await startFakeVault()
  t.teardown(() => fake.close())
  const h = await setup(t, { ...vaultEnv(fake), JOB_ATTEMPTS: '2', JOB_BACKOFF: '50ms' })
  await h.startWorkers()
  await onboard(h, 'sealed')
  const c: Creds = (await credentials(h, 'sealed')).json()
  fake.seal()
  await h.app.inject({ method: 'PATCH', url: '/tenants/sealed/suspend', headers: auth, payload: {} })
  const failed = await h.waitForState('sealed', 'failed')
  t.match(failed.error, /Vault/, 'the step gave up with the reason')
  fake.unseal()
  t.equal((await h.app.inject({ method: 'POST', url: '/tenants/sealed/retry', headers: auth })).statusCode, 202)
  await h.waitForState('sealed', 'suspended')
  t.notOk(await loginWorks(c), 'suspended only once the lease is revoked')
})
