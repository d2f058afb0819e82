// The fake Vault, driven by the real node-vault client: AppRole tokens that
// renew and expire, capabilities, database credentials that really log in to
// Postgres and really stop working when revoked, transit, the seal, namespaces
// and injected faults.
import { randomBytes } from 'node:crypto'
import vault from 'node-vault'
import pg from 'pg'
import t, { type Test } from 'tap'
import { pollUntil } from '../../src/poll.js'
import { PG_URL, names, recordId } from '../setup-run.js'
import { startFakeVault, type FakeVault, type FakeVaultOptions } from './fake-vault.js'

type ApiError = { message: string; response?: { statusCode: number; body?: { errors?: string[] } } }

/** The status and errors of a request Vault refused; fails the test if it did not refuse. */
async function refusal(request: Promise<unknown>): Promise<{ status: number; errors: string[]; message: string }> {
  try {
    await request
  } catch (err) {
    const e = err as ApiError
    if (!e.response) throw err
    return { status: e.response.statusCode, errors: e.response.body?.errors ?? [], message: e.message }
  }
  throw new Error('Vault accepted a request it should have refused')
}

async function fakeVault(t: Test, opts: FakeVaultOptions = {}): Promise<FakeVault> {
  const fake = await startFakeVault(opts)
  t.teardown(() => fake.close())
  return fake
}

const client = (fake: FakeVault, opts: { token?: string; namespace?: string } = {}) => vault({ endpoint: fake.url, token: opts.token, namespace: opts.namespace })

async function approleClient(fake: FakeVault, namespace?: string) {
  const v = client(fake, { namespace })
  const login = await v.approleLogin({ role_id: fake.approle.roleId, secret_id: fake.approle.secretId })
  return { v, login }
}

t.test('an AppRole token renews, is capped at its max TTL, expires, and a new login is needed', async (t) => {
  const fake = await fakeVault(t, { approle: { tokenTtl: 1, tokenMaxTtl: 2 } })
  const { v, login } = await approleClient(fake)
  t.match(login.auth, { lease_duration: 1, renewable: true, policies: ['default', 'landlord'], metadata: { role_name: 'landlord' }, token_type: 'service' })
  t.equal(v.token, login.auth.client_token, 'node-vault keeps the token it logged in with')
  const self = await v.tokenLookupSelf()
  t.match(self.data, { display_name: 'approle', path: 'auth/approle/login', renewable: true, policies: ['default', 'landlord'] })

  const renewed = await v.tokenRenewSelf({ increment: 1 })
  t.equal(renewed.auth.lease_duration, 1, 'renewed for the increment asked')
  const capped = await v.tokenRenewSelf({ increment: 60 })
  t.ok(capped.auth.lease_duration <= 2, 'never past the max TTL counted from the login')
  t.match(capped.warnings, [/^TTL of "1m" exceeded the effective max_ttl of "\ds"; TTL value is capped accordingly$/])

  // Renewed to its max TTL, the token lives out the second it was last renewed in, but will not renew again.
  const refused = await pollUntil(() => refusal(v.tokenRenewSelf({ increment: 1 })).catch(() => undefined), { timeoutMs: 5000 })
  t.match(refused, { status: 500, errors: ['1 error occurred:\n\t* past the max TTL, cannot renew\n\n'] }, "past its max TTL renewal is refused, with Vault's 500")
  const gone = await pollUntil(() => refusal(v.tokenLookupSelf()).catch(() => undefined), { timeoutMs: 5000 })
  t.match(gone, { status: 403, errors: ['2 errors occurred:\n\t* permission denied\n\t* invalid token\n\n'] }, 'then it expires: an invalid token')
  t.match(await refusal(v.tokenRenewSelf({ increment: 1 })), { status: 403 }, 'which cannot be renewed either')
  const again = await v.approleLogin({ role_id: fake.approle.roleId, secret_id: fake.approle.secretId })
  t.not(again.auth.client_token, login.auth.client_token)
  t.equal((await v.tokenLookupSelf()).data.id, again.auth.client_token, 'a fresh login works')

  t.match(await refusal(v.approleLogin({ role_id: fake.approle.roleId, secret_id: 'wrong' })), { status: 400, errors: ['invalid role or secret ID'] })
  t.match(await refusal(client(fake, { token: fake.rootToken }).tokenRenewSelf()), { status: 400, errors: ['invalid lease ID'] }, 'the root token has no lease')
})

t.test('capabilities-self answers per path from the policies, and what it denies is refused', async (t) => {
  const fake = await fakeVault(t, { approleCapabilities: { 'transit/keys/*': ['read'] } })
  const { v } = await approleClient(fake)
  const paths = ['transit/keys/k1', 'database/creds/app', 'sys/leases/revoke-prefix/database/creds/app', 'secret/other']
  const caps = await v.write('sys/capabilities-self', { paths })
  t.same(caps.data, { 'transit/keys/k1': ['read'], 'database/creds/app': ['read'], 'sys/leases/revoke-prefix/database/creds/app': ['sudo', 'update'], 'secret/other': ['deny'] })
  t.same(caps['database/creds/app'], ['read'], 'also at the top level, as Vault injects it')
  t.notOk('capabilities' in caps, '`capabilities` only when one path is asked')
  t.same((await v.write('sys/capabilities-self', { paths: ['transit/encrypt/k1'] })).capabilities, ['update'])
  t.same((await client(fake, { token: fake.rootToken }).write('sys/capabilities-self', { paths: ['anything'] })).capabilities, ['root'])

  t.match(await refusal(v.write('transit/keys/k1', {})), { status: 403, errors: ['1 error occurred:\n\t* permission denied\n\n'] }, 'a missing capability is a 403')
  t.match(await refusal(client(fake).read('transit/keys/k1')), { status: 403 }, 'no token is a 403')
  t.match(await refusal(client(fake, { token: 'hvs.nonsense' }).read('transit/keys/k1')), { status: 403, message: /invalid token/ })
  fake.setApprolePolicy({})
  t.match(await refusal(v.read('database/creds/app')), { status: 403 }, 'a policy change applies to live tokens')
})

t.test('database credentials log in to Postgres, renew, and stop working once revoked', async (t) => {
  const id = randomBytes(4).toString('hex')
  recordId(id)
  const prefix = names(id).tenantPrefix
  const database = `${prefix}vault`
  const admin = new pg.Client({ connectionString: PG_URL })
  await admin.connect()
  const fake = await startFakeVault({ approle: { tokenTtl: 1, tokenMaxTtl: 1 } })
  t.teardown(async () => {
    await fake.close()
    for (const name of fake.state.usernames) await admin.query(`DROP ROLE IF EXISTS "${name}"`)
    await admin.query(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`)
    await admin.end()
  })
  await admin.query(`CREATE DATABASE "${database}"`)
  const server = new URL(PG_URL)
  const v = client(fake, { token: fake.rootToken })
  const loginAs = async (creds: { username: string; password: string }) => {
    const c = new pg.Client({ host: server.hostname, port: Number(server.port || 5432), user: creds.username, password: creds.password, database })
    await c.connect()
    return c
  }
  const roleExists = async (name: string) => (await admin.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [name])).rowCount === 1

  const written = await v.write('database/config/cluster', {
    plugin_name: 'postgresql-database-plugin',
    connection_url: `postgresql://{{username}}:{{password}}@${server.host}/${database}`,
    username: server.username || 'postgres',
    password: 'unused-with-trust',
    allowed_roles: `${prefix}*`,
  })
  t.equal(written, '', '204: no body')
  t.notOk('password' in (await v.read('database/config/cluster')).data.connection_details, 'the password is never read back')
  const role = `${prefix}app`
  await v.write(`database/roles/${role}`, {
    db_name: 'cluster',
    creation_statements: [`CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';`],
    revocation_statements: ['DROP ROLE IF EXISTS "{{name}}";'],
    default_ttl: '1h',
    max_ttl: 7200,
  })
  t.match((await v.read(`database/roles/${role}`)).data, { db_name: 'cluster', default_ttl: 3600, max_ttl: 7200, renew_statements: [] })
  t.match(await refusal(v.read(`database/roles/${prefix}missing`)), { status: 404, errors: [] }, "a missing role is Vault's bare 404")

  const creds = await v.read(`database/creds/${role}`)
  t.match(creds, { lease_duration: 3600, renewable: true, data: { password: /^[A-Za-z0-9-]{20}$/ } })
  t.match(creds.lease_id, new RegExp(`^database/creds/${role}/[A-Za-z0-9]{24}$`))
  t.match(creds.data.username, new RegExp(`^v-root-${role.slice(0, 8)}-[A-Za-z0-9]{20}-\\d{10}$`), "the postgres plugin's default username")
  const session = await loginAs(creds.data)
  t.equal((await session.query('SELECT current_user')).rows[0].current_user, creds.data.username, 'the login connects')
  await session.end()
  const validUntil = async () => (await admin.query('SELECT rolvaliduntil FROM pg_roles WHERE rolname = $1', [creds.data.username])).rows[0].rolvaliduntil as Date
  t.ok(Math.abs((await validUntil()).getTime() - (Date.now() + 3605_000)) < 5000, 'VALID UNTIL is the lease end plus 5 s')

  const renewal = await v.write('sys/leases/renew', { lease_id: creds.lease_id, increment: 10_000 })
  t.match(renewal, { lease_id: creds.lease_id, renewable: true, warnings: [/exceeded the effective max_ttl/] })
  t.ok(renewal.lease_duration <= 7200 && renewal.lease_duration > 7190, 'capped at max_ttl from the issue time')
  t.ok(Math.abs((await validUntil()).getTime() - (Date.now() + (renewal.lease_duration + 5) * 1000)) < 5000, 'the renewal moved VALID UNTIL')
  t.match((await v.write('sys/leases/lookup', { lease_id: creds.lease_id })).data, { id: creds.lease_id, renewable: true })

  await v.write(`database/roles/other`, { db_name: 'cluster', creation_statements: ['SELECT 1'] })
  t.match(await refusal(v.read('database/creds/other')), { status: 500, errors: [/"other" is not an allowed role/] }, 'allowed_roles is enforced')

  const before = fake.state.statementsRun
  const queued = await refusal(v.revokePrefix({ path_prefix: `database/creds/${role}` }))
  t.equal(queued.status, 202, "Vault queues the revocation and answers 202, which node-vault 0.12 takes for an error")
  t.ok(await pollUntil(async () => ((await roleExists(creds.data.username)) ? undefined : true), { timeoutMs: 3000 }), 'the login is dropped')
  await t.rejects(loginAs(creds.data), { code: '28000' }, 'and no longer logs in')
  t.equal(fake.state.statementsRun, before + 1, 'the revocation statement ran')
  t.match(fake.state.revocations, [{ leaseId: creds.lease_id, reason: 'revoke-prefix' }])
  t.equal(fake.state.leases.size, 0)
  t.match(await refusal(v.write('sys/leases/renew', { lease_id: creds.lease_id })), { status: 400, errors: ['lease not found'] })

  const second = await v.read(`database/creds/${role}`)
  t.equal(await v.write('sys/leases/revoke', { lease_id: second.lease_id, sync: true }), '', 'sync=true: 204 once revoked')
  t.notOk(await roleExists(second.data.username), 'gone before the answer')

  await v.write(`database/roles/${prefix}brief`, { db_name: 'cluster', creation_statements: [`CREATE ROLE "{{name}}" LOGIN;`], default_ttl: 1 })
  const brief = await v.read(`database/creds/${prefix}brief`)
  t.ok(await roleExists(brief.data.username))
  t.ok(await pollUntil(async () => ((await roleExists(brief.data.username)) ? undefined : true), { timeoutMs: 4000 }), 'revoked when its lease runs out')
  t.match(fake.state.revocations.at(-1), { leaseId: brief.lease_id, reason: 'expired' })

  const { v: app } = await approleClient(fake)
  const issued = await app.read(`database/creds/${role}`)
  t.match(issued.data.username, /^v-approle-/, "the token's display name is in the username")
  t.ok(await pollUntil(async () => ((await roleExists(issued.data.username)) ? undefined : true), { timeoutMs: 4000 }), 'the leases of an expired token are revoked with it')
  t.match(fake.state.revocations.at(-1), { leaseId: issued.lease_id, reason: 'token' })
})

t.test('transit encrypts with a real key, and a key is deleted only once deletion_allowed', async (t) => {
  const fake = await fakeVault(t)
  const v = client(fake, { token: fake.rootToken })
  const created = await v.transitCreateKey({ name: 'k1', exportable: false, allow_plaintext_backup: false })
  t.match(created.data, { name: 'k1', type: 'aes256-gcm96', deletion_allowed: false, latest_version: 1, keys: { 1: Number } })
  await v.transitCreateKey({ name: 'k2' })
  const plaintext = Buffer.from('a tenant data key').toString('base64')
  const { data } = await v.encryptData({ name: 'k1', plaintext })
  t.match(data, { ciphertext: /^vault:v1:/, key_version: 1 })
  t.equal(Buffer.from(data.ciphertext.slice('vault:v1:'.length), 'base64').length, 12 + 17 + 16, 'nonce, ciphertext, tag')
  t.equal((await v.decryptData({ name: 'k1', ciphertext: data.ciphertext })).data.plaintext, plaintext)
  t.match(await refusal(v.decryptData({ name: 'k2', ciphertext: data.ciphertext })), { status: 400, errors: ['invalid ciphertext: unable to decrypt'] }, 'another key cannot open it')
  t.match(await refusal(v.encryptData({ name: 'k1', plaintext: 'not base64!' })), { status: 400, errors: ['illegal base64 data at input byte 3'] })

  t.match(await refusal(v.transitDeleteKey({ name: 'k1' })), { status: 400, errors: ['error deleting policy k1: deletion is not allowed for this key'] })
  t.match((await v.write('transit/keys/k1/config', { deletion_allowed: true })).data, { deletion_allowed: true })
  t.equal(await v.transitDeleteKey({ name: 'k1' }), '')
  t.match(await refusal(v.transitReadKey({ name: 'k1' })), { status: 404, errors: [] })
  t.notOk(fake.state.keys.has('k1'))

  const { v: app } = await approleClient(fake)
  t.match(await refusal(app.encryptData({ name: 'k9', plaintext })), { status: 403 }, 'encrypting with a missing key needs `create`, which Landlord is not given')
  t.match((await v.encryptData({ name: 'k9', plaintext })).data, { key_version: 1 }, 'the root token may create it on the way')
})

t.test('a sealed Vault answers 503, and health and seal-status say why', async (t) => {
  const fake = await fakeVault(t)
  const v = client(fake, { token: fake.rootToken })
  await v.transitCreateKey({ name: 'k' })
  fake.seal()
  const sealed = await refusal(v.transitReadKey({ name: 'k' }))
  t.equal(sealed.status, 503)
  t.same(sealed.errors, ['Vault is sealed'])
  t.match(await v.health(), { initialized: true, sealed: true, standby: true }, 'node-vault resolves sys/health even when it is a 503')
  t.match(await v.status(), { sealed: true, t: 1, n: 1 })
  fake.unseal()
  t.match(await v.health(), { sealed: false, standby: false })
  await v.seal()
  t.equal(fake.state.sealed, true, 'PUT sys/seal with the root token seals')
  t.match(await v.unseal({ key: fake.unsealKey }), { sealed: false })
  t.match(await v.transitReadKey({ name: 'k' }), { data: { name: 'k' } })
})

t.test('namespaces keep their own keys, roles and tokens', async (t) => {
  const fake = await fakeVault(t)
  const a = client(fake, { token: fake.rootToken, namespace: 'tenant-a' })
  const b = client(fake, { token: fake.rootToken, namespace: 'tenant-b/' })
  await a.transitCreateKey({ name: 'shared-name' })
  t.ok(fake.state.namespace('tenant-a').keys.has('shared-name'))
  t.notOk(fake.state.keys.has('shared-name'), 'not in the root namespace')
  t.match(await refusal(b.transitReadKey({ name: 'shared-name' })), { status: 404 }, 'nor in another namespace')
  const { v: inA, login } = await approleClient(fake, 'tenant-a')
  t.match(login.auth.client_token, /^hvs\.[A-Za-z0-9]{24}\.[A-Za-z0-9]{5}$/, "a namespace's token carries its id")
  t.match(await inA.transitReadKey({ name: 'shared-name' }), { data: { name: 'shared-name' } })
  const elsewhere = client(fake, { token: login.auth.client_token, namespace: 'tenant-b' })
  t.match(await refusal(elsewhere.transitReadKey({ name: 'shared-name' })), { status: 403 }, 'and is no token in another namespace')
  t.same(
    fake.state.requests.filter((r) => r.method === 'GET' && r.path === '/v1/transit/keys/shared-name').map((r) => [r.namespace, r.status]),
    [['tenant-b', 404], ['tenant-a', 200], ['tenant-b', 403]],
    'each request is recorded with its namespace',
  )
})

t.test('responses are Vault envelopes, errors are Vault error bodies, and faults can be injected', async (t) => {
  const fake = await fakeVault(t)
  const v = client(fake, { token: fake.rootToken })
  const key = await v.transitCreateKey({ name: 'k', unknown_field: 1 })
  t.same(Object.keys(key).sort(), ['auth', 'data', 'lease_duration', 'lease_id', 'mount_type', 'renewable', 'request_id', 'warnings', 'wrap_info'])
  t.same(key.warnings, ['Endpoint ignored these unrecognized parameters: [unknown_field]'])
  t.match(await refusal(v.read('nowhere/at/all')), { status: 404, errors: ['no handler for route "nowhere/at/all". route entry not found.'] })
  t.match(await refusal(v.read('transit/nothing-here')), { status: 404, errors: ['1 error occurred:\n\t* unsupported path\n\n'] })
  t.match(await refusal(v.delete('database/creds/x')), { status: 405, errors: ['1 error occurred:\n\t* unsupported operation\n\n'] })
  t.match(await refusal(v.write('sys/leases/revoke', {})), { status: 400, errors: ['lease_id must be specified'] })

  fake.failNext(502, 2)
  t.equal((await refusal(v.transitReadKey({ name: 'k' }))).status, 502)
  t.equal((await refusal(v.status())).status, 502)
  t.match(await v.transitReadKey({ name: 'k' }), { data: { name: 'k' } }, 'then Vault answers again')
  t.same(fake.state.requests.slice(-3).map((r) => [r.method, r.path, r.status]), [
    ['GET', '/v1/transit/keys/k', 502],
    ['GET', '/v1/sys/seal-status', 502],
    ['GET', '/v1/transit/keys/k', 200],
  ])
  t.notOk(JSON.stringify(fake.state.requests).includes(fake.rootToken), 'no token is recorded')
})
