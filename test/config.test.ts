// Configuration: defaults, and one clear error naming the variable for bad values.
import t from 'tap'
import { ConfigError, loadConfig } from '../src/config.js'

t.test('defaults follow the design', async (t) => {
  const c = loadConfig({})
  t.match(c, {
    port: 3000,
    host: '127.0.0.1',
    databaseUrl: 'postgres://postgres@127.0.0.1:5432/landlord',
    tenantClusterUrl: 'postgres://postgres@127.0.0.1:5432/postgres',
    redisUrl: 'redis://127.0.0.1:6379',
    tenantDbPrefix: 'tenant_',
    queuePrefix: 'landlord',
    secretsBackend: 'local',
    wipeRetentionMs: 7 * 86_400_000,
    credentialTtlMs: 3_600_000,
    hibernateAfterMs: undefined,
    webhookDisableAfterMs: 5 * 86_400_000,
  })
  t.same(c.webhookRetryScheduleMs, [5e3, 3e5, 18e5, 72e5, 18e6, 36e6, 36e6])
  t.ok(Object.isFrozen(c))
})

t.test('a bad value fails with the variable named', async (t) => {
  const cases: Array<[Record<string, string>, string]> = [
    [{ PORT: 'eighty' }, 'PORT'],
    [{ PORT: '70000' }, 'PORT'],
    [{ DATABASE_URL: 'mysql://x/y' }, 'DATABASE_URL'],
    [{ DATABASE_URL: 'not a url' }, 'DATABASE_URL'],
    [{ REDIS_URL: 'http://localhost' }, 'REDIS_URL'],
    [{ TENANT_DB_PREFIX: 'Tenant-' }, 'TENANT_DB_PREFIX'],
    [{ TENANT_DB_PREFIX: 'a_prefix_far_too_long_' }, 'TENANT_DB_PREFIX'],
    [{ QUEUE_PREFIX: 'has:colon' }, 'QUEUE_PREFIX'],
    [{ SECRETS_BACKEND: 'file' }, 'SECRETS_BACKEND'],
    [{ SECRETS_BACKEND: 'vault' }, 'VAULT_ADDR'],
    [{ SECRETS_BACKEND: 'vault', VAULT_ADDR: 'http://vault:8200' }, 'VAULT_TOKEN'],
    [{ SECRETS_BACKEND: 'vault', VAULT_ADDR: 'http://vault:8200', VAULT_ROLE_ID: 'r' }, 'VAULT_SECRET_ID'],
    [{ SECRETS_BACKEND: 'vault', VAULT_ADDR: 'http://vault:8200', VAULT_TOKEN: 'hunter2', VAULT_ROLE_ID: 'r' }, 'VAULT_ROLE_ID'],
    [{ SECRETS_BACKEND: 'vault', VAULT_ADDR: 'ftp://vault' , VAULT_TOKEN: 'hunter2' }, 'VAULT_ADDR'],
    [{ SECRETS_BACKEND: 'vault', VAULT_ADDR: 'http://vault:8200', VAULT_TOKEN: 'hunter2', VAULT_DB_MOUNT: 'a b' }, 'VAULT_DB_MOUNT'],
    [{ CREDENTIAL_MAX_TTL: 'forever' }, 'CREDENTIAL_MAX_TTL'],
    [{ LANDLORD_MASTER_KEY: 'c2hvcnQ=' }, 'LANDLORD_MASTER_KEY'],
    [{ WIPE_RETENTION: '7 days' }, 'WIPE_RETENTION'],
    [{ WIPE_RETENTION: 'P1M' }, 'WIPE_RETENTION'],
    [{ CREDENTIAL_TTL: 'PT' }, 'CREDENTIAL_TTL'],
    [{ HIBERNATE_AFTER: 'soon' }, 'HIBERNATE_AFTER'],
    [{ WEBHOOK_RETRY_SCHEDULE: '5s,,5m' }, 'WEBHOOK_RETRY_SCHEDULE'],
    [{ BILLING_WEBHOOK_URL: 'ftp://billing', BILLING_WEBHOOK_SECRET: `whsec_${'A'.repeat(44)}` }, 'BILLING_WEBHOOK_URL'],
    [{ BILLING_WEBHOOK_URL: 'https://billing.example' }, 'BILLING_WEBHOOK_SECRET'],
    [{ BILLING_WEBHOOK_URL: 'https://billing.example', BILLING_WEBHOOK_SECRET: 'hunter2' }, 'BILLING_WEBHOOK_SECRET'],
    [{ WEBHOOK_TIMEOUT: '15' }, 'WEBHOOK_TIMEOUT'],
    [{ WAKE_TIMEOUT: 'soon' }, 'WAKE_TIMEOUT'],
    [{ MAINTENANCE_INTERVAL: 'hourly' }, 'MAINTENANCE_INTERVAL'],
    [{ JOB_ATTEMPTS: '0' }, 'JOB_ATTEMPTS'],
    [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL'],
    [{ LANDLORD_ADMIN_KEY: 'secret' }, 'LANDLORD_ADMIN_KEY'],
    [{ LANDLORD_ADMIN_KEY: 'hunter2'.repeat(4) }, 'LANDLORD_ADMIN_KEY'],
    [{ LANDLORD_ADMIN_KEY: `hunter2 ${'x'.repeat(40)}` }, 'LANDLORD_ADMIN_KEY'],
    [{ WEBHOOK_ALLOWED_NETWORKS: '10.0.0.0' }, 'WEBHOOK_ALLOWED_NETWORKS'],
    [{ WEBHOOK_ALLOWED_NETWORKS: '10.0.0.0/8,127.0.0.0/33' }, 'WEBHOOK_ALLOWED_NETWORKS'],
    [{ TENANT_CLUSTER_HARDENING: 'off' }, 'TENANT_CLUSTER_HARDENING'],
  ]
  for (const [env, variable] of cases) {
    const err = (() => {
      try {
        loadConfig(env)
      } catch (e) {
        return e
      }
    })()
    t.ok(err instanceof ConfigError, `${JSON.stringify(env)} is refused`)
    t.equal((err as ConfigError).variable, variable)
    t.match((err as Error).message, new RegExp(`^${variable}: `))
    t.notMatch((err as Error).message, /hunter2/, 'a rejected secret is not echoed')
  }
})

t.test('access and network settings', async (t) => {
  const key = 'k'.repeat(32)
  t.equal(loadConfig({ LANDLORD_ADMIN_KEY: key }).adminKey, key, 'a 32-character admin key is accepted')
  t.same(loadConfig({ WEBHOOK_ALLOWED_NETWORKS: ' 10.0.5.0/24, fd00::/8 ' }).webhookAllowedNetworks, ['10.0.5.0/24', 'fd00::/8'])
  t.same(loadConfig({}).webhookAllowedNetworks, [], 'no internal network is allowed by default')
  t.equal(loadConfig({}).clusterHardening, 'enforce')
  t.equal(loadConfig({ TENANT_CLUSTER_HARDENING: 'warn' }).clusterHardening, 'warn')
})

t.test('the Vault backend takes a token or an AppRole, and its mounts', async (t) => {
  const token = loadConfig({ SECRETS_BACKEND: 'vault', VAULT_ADDR: 'http://vault:8200/', VAULT_TOKEN: 't' })
  t.match(token.vault, { addr: 'http://vault:8200', auth: { token: 't' }, dbMount: 'database', transitMount: 'transit', namespace: undefined })
  const approle = loadConfig({ SECRETS_BACKEND: 'vault', VAULT_ADDR: 'http://vault:8200', VAULT_ROLE_ID: 'r', VAULT_SECRET_ID: 's', VAULT_NAMESPACE: 'team', VAULT_DB_MOUNT: '/db/', VAULT_TRANSIT_MOUNT: 'kms' })
  t.match(approle.vault, { auth: { roleId: 'r', secretId: 's' }, namespace: 'team', dbMount: 'db', transitMount: 'kms' })
  t.equal(loadConfig({}).vault, undefined)
  t.equal(loadConfig({}).credentialMaxTtlMs, 4 * 3_600_000)
})

t.test('durations are ISO 8601', async (t) => {
  t.equal(loadConfig({ WIPE_RETENTION: 'PT0S' }).wipeRetentionMs, 0)
  t.equal(loadConfig({ WIPE_RETENTION: 'P1DT12H' }).wipeRetentionMs, 36 * 3_600_000)
  t.equal(loadConfig({ HIBERNATE_AFTER: 'P2W' }).hibernateAfterMs, 14 * 86_400_000)
})
