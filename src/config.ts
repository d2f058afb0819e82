// The environment, read once into one frozen, typed object. Nothing else reads
// process.env. A bad value fails start with one line naming the variable.
import ipaddr from 'ipaddr.js'
import { parseIsoDuration, parseShortDuration } from './duration.js'

export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(`${variable}: ${message}`)
    this.name = 'ConfigError'
  }
}

export interface Config {
  /** API listen port (PORT, default 3000). */
  readonly port: number
  /** API listen address (HOST, default 127.0.0.1). */
  readonly host: string
  /** `landlord worker` only: serve /metrics and /healthz on this port (METRICS_PORT, unset: none). */
  readonly metricsPort: number | undefined
  /** Control-plane database, created when missing (DATABASE_URL). */
  readonly databaseUrl: string
  /** Admin connection to the cluster that holds tenant databases (TENANT_CLUSTER_URL). */
  readonly tenantClusterUrl: string
  /** BullMQ's Redis (REDIS_URL). */
  readonly redisUrl: string
  /** Bootstrap API key with every scope (LANDLORD_ADMIN_KEY); only its hash is stored. */
  readonly adminKey: string | undefined
  /** Prefix of tenant database and role names (TENANT_DB_PREFIX, default tenant_). */
  readonly tenantDbPrefix: string
  /** BullMQ key prefix (QUEUE_PREFIX, default landlord). */
  readonly queuePrefix: string
  /** Folder of tenant schema migrations (TENANT_MIGRATIONS_DIR). */
  readonly tenantMigrationsDir: string
  /** The secrets backend (SECRETS_BACKEND): `local` (built in) or `vault`. */
  readonly secretsBackend: 'local' | 'vault'
  /** Key-encryption key of the local secrets backend, 32 bytes (LANDLORD_MASTER_KEY, base64). */
  readonly masterKey: Buffer | undefined
  /** Where a generated master key is kept when LANDLORD_MASTER_KEY is unset (LANDLORD_HOME). */
  readonly home: string
  readonly billingWebhook: { readonly url: string | undefined; readonly secret: string | undefined }
  /** How long a decommissioned tenant's data is kept (WIPE_RETENTION, ISO 8601). */
  readonly wipeRetentionMs: number
  /** Lifetime of issued login credentials (CREDENTIAL_TTL, ISO 8601). */
  readonly credentialTtlMs: number
  /** Longest a credential lease may be renewed to (CREDENTIAL_MAX_TTL, ISO 8601, default PT4H). */
  readonly credentialMaxTtlMs: number
  /** The Vault backend's connection, when SECRETS_BACKEND=vault. */
  readonly vault: VaultConfig | undefined
  /** How long a credential request waits for a hibernated tenant to wake (WAKE_TIMEOUT, default PT30S). */
  readonly wakeTimeoutMs: number
  /** How often the lease reaper, retention expiry and idle sweep run (MAINTENANCE_INTERVAL, default 60s). */
  readonly maintenanceEveryMs: number
  /** A tenant this long in a transitional state with no live job gets a fresh one (STUCK_AFTER, default PT15M). */
  readonly stuckAfterMs: number
  /** How long relayed outbox rows and settled webhook deliveries are kept (HISTORY_RETENTION, default P30D). */
  readonly historyRetentionMs: number
  /** Idle time before hibernation (HIBERNATE_AFTER); undefined means never. */
  readonly hibernateAfterMs: number | undefined
  /** Delays between webhook attempts (WEBHOOK_RETRY_SCHEDULE). */
  readonly webhookRetryScheduleMs: readonly number[]
  /** How long one webhook attempt may take (WEBHOOK_TIMEOUT, default PT15S). */
  readonly webhookTimeoutMs: number
  /** An endpoint failing this long is disabled (WEBHOOK_DISABLE_AFTER). */
  readonly webhookDisableAfterMs: number
  /**
   * CIDRs that API-registered webhook URLs may reach although they are private,
   * loopback or link-local (WEBHOOK_ALLOWED_NETWORKS, comma list; unset: none).
   */
  readonly webhookAllowedNetworks: readonly string[]
  /**
   * What to do when the cluster's maintenance databases cannot be closed to
   * tenant logins (TENANT_CLUSTER_HARDENING): `enforce` refuses to start,
   * `warn` starts and names each open database (for shared clusters).
   */
  readonly clusterHardening: 'enforce' | 'warn'
  /** Attempts of a lifecycle job before the tenant is `failed` (JOB_ATTEMPTS, default 5). */
  readonly jobAttempts: number
  /** First retry delay of a lifecycle job, doubled each attempt (JOB_BACKOFF, default 2s). */
  readonly jobBackoffMs: number
  /** Jobs one worker process runs at once (WORKER_CONCURRENCY, default 4). */
  readonly workerConcurrency: number
  /**
   * How long a job stays claimed by a worker that stopped answering (it died)
   * before another worker takes it over (JOB_LOCK_TIMEOUT, default 30s).
   */
  readonly jobLockMs: number
  /** Tenants a fleet migration migrates at once unless the request says (FLEET_MIGRATION_CONCURRENCY, default 8, at most 64). */
  readonly fleetConcurrency: number
  /**
   * The share, in percent, of the tenant cluster's free connections a fleet
   * migration may use at its start; caps any requested concurrency
   * (FLEET_MIGRATION_CONNECTION_SHARE, default 50).
   */
  readonly fleetConnectionSharePct: number
  /** Failed migrations in a row after which a tenant is quarantined (FLEET_QUARANTINE_AFTER, default 3). */
  readonly fleetQuarantineAfter: number
  /**
   * How long one statement of a tenant migration may run (TENANT_MIGRATION_TIMEOUT,
   * default PT1H): a tenant's own function or trigger must not hold a migration forever.
   */
  readonly tenantMigrationTimeoutMs: number
  /** Requests one API key (or one address without a key) may make per window (RATE_LIMIT_MAX, default 1000). */
  readonly rateLimitMax: number
  /** The rate limit's window (RATE_LIMIT_WINDOW, default 1m). */
  readonly rateLimitWindowMs: number
  /** pino level (LOG_LEVEL, default info). */
  readonly logLevel: string
}

export interface VaultConfig {
  /** VAULT_ADDR. */
  readonly addr: string
  /** VAULT_TOKEN, or an AppRole login (VAULT_ROLE_ID and VAULT_SECRET_ID). */
  readonly auth: { readonly token: string } | { readonly roleId: string; readonly secretId: string }
  /** VAULT_NAMESPACE (Vault Enterprise / HCP), unset: none. */
  readonly namespace: string | undefined
  /** Mount of the database secrets engine (VAULT_DB_MOUNT, default database). */
  readonly dbMount: string
  /** Mount of the transit engine (VAULT_TRANSIT_MOUNT, default transit). */
  readonly transitMount: string
}

type Env = Record<string, string | undefined>

function read(env: Env, name: string, fallback: string): string {
  const v = env[name]
  return v === undefined || v === '' ? fallback : v
}

function optional(env: Env, name: string): string | undefined {
  const v = env[name]
  return v === undefined || v === '' ? undefined : v
}

function integer(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = read(env, name, String(fallback))
  const n = Number(raw)
  if (!/^\d+$/.test(raw) || n < min || n > max) {
    throw new ConfigError(name, `expected an integer between ${min} and ${max}, got "${raw}"`)
  }
  return n
}

function url(env: Env, name: string, fallback: string, protocols: string[]): string {
  const raw = read(env, name, fallback)
  let parsed: URL
  try {
    parsed = new URL(raw)
  } catch {
    throw new ConfigError(name, 'is not a valid URL')
  }
  if (!protocols.includes(parsed.protocol)) {
    throw new ConfigError(name, `expected a ${protocols.join(' or ')} URL`)
  }
  return raw
}

function isoDuration(env: Env, name: string, fallback: string): number {
  const raw = read(env, name, fallback)
  const ms = parseIsoDuration(raw)
  if (ms === undefined) throw new ConfigError(name, `expected an ISO 8601 duration such as P7D or PT1H, got "${raw}"`)
  return ms
}

function shortDuration(env: Env, name: string, fallback: string): number {
  const raw = read(env, name, fallback)
  const ms = parseShortDuration(raw)
  if (ms === undefined) throw new ConfigError(name, `expected a duration such as 500ms, 5s or 2h, got "${raw}"`)
  return ms
}

const MOUNT = /^[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+)*$/

function vaultConfig(env: Env): VaultConfig {
  const addr = optional(env, 'VAULT_ADDR')
  if (addr === undefined) throw new ConfigError('VAULT_ADDR', 'is required when SECRETS_BACKEND=vault')
  url(env, 'VAULT_ADDR', addr, ['http:', 'https:'])
  const token = optional(env, 'VAULT_TOKEN')
  const roleId = optional(env, 'VAULT_ROLE_ID')
  const secretId = optional(env, 'VAULT_SECRET_ID')
  if (token !== undefined && roleId !== undefined) throw new ConfigError('VAULT_ROLE_ID', 'set VAULT_TOKEN or VAULT_ROLE_ID/VAULT_SECRET_ID, not both')
  if (roleId !== undefined && secretId === undefined) throw new ConfigError('VAULT_SECRET_ID', 'is required with VAULT_ROLE_ID')
  if (token === undefined && roleId === undefined) throw new ConfigError('VAULT_TOKEN', 'or VAULT_ROLE_ID and VAULT_SECRET_ID are required when SECRETS_BACKEND=vault')
  const mount = (name: string, fallback: string) => {
    const value = read(env, name, fallback).replace(/^\/+|\/+$/g, '')
    if (!MOUNT.test(value)) throw new ConfigError(name, `expected a mount path such as ${fallback}, got "${value}"`)
    return value
  }
  return Object.freeze({
    addr: addr.replace(/\/+$/, ''),
    auth: Object.freeze(token !== undefined ? { token } : { roleId: roleId!, secretId: secretId! }),
    namespace: optional(env, 'VAULT_NAMESPACE'),
    dbMount: mount('VAULT_DB_MOUNT', 'database'),
    transitMount: mount('VAULT_TRANSIT_MOUNT', 'transit'),
  })
}

export function loadConfig(env: Env = process.env): Config {
  const prefix = read(env, 'TENANT_DB_PREFIX', 'tenant_')
  // Names are prefix + slug (≤ 30) + role suffixes; 16 keeps every name under
  // Postgres' 63-byte identifier limit, past which names are silently truncated.
  if (!/^[a-z][a-z0-9_]{0,15}$/.test(prefix)) {
    throw new ConfigError('TENANT_DB_PREFIX', 'expected 1-16 characters of a-z, 0-9 and _, starting with a letter')
  }
  const queuePrefix = read(env, 'QUEUE_PREFIX', 'landlord')
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(queuePrefix)) {
    throw new ConfigError('QUEUE_PREFIX', 'expected 1-64 characters of letters, digits, _ . -')
  }
  const backend = read(env, 'SECRETS_BACKEND', 'local')
  if (backend !== 'local' && backend !== 'vault') throw new ConfigError('SECRETS_BACKEND', `expected "local" or "vault", got "${backend}"`)
  const vault = backend === 'vault' ? vaultConfig(env) : undefined
  const masterKeyRaw = optional(env, 'LANDLORD_MASTER_KEY')
  let masterKey: Buffer | undefined
  if (masterKeyRaw !== undefined) {
    masterKey = Buffer.from(masterKeyRaw, 'base64')
    if (masterKey.length !== 32) throw new ConfigError('LANDLORD_MASTER_KEY', 'expected 32 bytes, base64-encoded')
  }
  const schedule = read(env, 'WEBHOOK_RETRY_SCHEDULE', '5s,5m,30m,2h,5h,10h,10h')
  const scheduleMs = schedule.split(',').map((part) => parseShortDuration(part))
  if (scheduleMs.some((ms) => ms === undefined)) {
    throw new ConfigError('WEBHOOK_RETRY_SCHEDULE', `expected comma-separated durations such as 5s,5m,2h, got "${schedule}"`)
  }
  const hibernateAfter = optional(env, 'HIBERNATE_AFTER')
  const logLevel = read(env, 'LOG_LEVEL', 'info')
  if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(logLevel)) {
    throw new ConfigError('LOG_LEVEL', `expected fatal, error, warn, info, debug, trace or silent, got "${logLevel}"`)
  }
  const adminKey = optional(env, 'LANDLORD_ADMIN_KEY')
  // A bootstrap key with every scope must not be guessable.
  if (adminKey !== undefined && (adminKey.length < 32 || !/^[\x21-\x7e]+$/.test(adminKey))) {
    throw new ConfigError('LANDLORD_ADMIN_KEY', 'expected at least 32 visible ASCII characters (openssl rand -hex 32)')
  }
  const networks = optional(env, 'WEBHOOK_ALLOWED_NETWORKS')
  const allowedNetworks = (networks ?? '').split(',').map((n) => n.trim()).filter((n) => n !== '')
  for (const cidr of allowedNetworks) {
    if (!ipaddr.isValidCIDR(cidr)) {
      throw new ConfigError('WEBHOOK_ALLOWED_NETWORKS', `expected comma-separated CIDRs such as 10.0.5.0/24,fd00::/8, got "${cidr}"`)
    }
  }
  const hardening = read(env, 'TENANT_CLUSTER_HARDENING', 'enforce')
  if (hardening !== 'enforce' && hardening !== 'warn') {
    throw new ConfigError('TENANT_CLUSTER_HARDENING', `expected "enforce" or "warn", got "${hardening}"`)
  }
  const billingUrl = optional(env, 'BILLING_WEBHOOK_URL')
  const billingSecret = optional(env, 'BILLING_WEBHOOK_SECRET')
  if (billingUrl !== undefined && billingSecret === undefined) {
    throw new ConfigError('BILLING_WEBHOOK_SECRET', 'is required when BILLING_WEBHOOK_URL is set (whsec_ followed by base64)')
  }
  if (billingSecret !== undefined && !/^whsec_[A-Za-z0-9+/]{32,}={0,2}$/.test(billingSecret)) {
    throw new ConfigError('BILLING_WEBHOOK_SECRET', 'expected whsec_ followed by at least 24 bytes of base64')
  }

  return Object.freeze({
    port: integer(env, 'PORT', 3000, 0, 65535),
    metricsPort: optional(env, 'METRICS_PORT') === undefined ? undefined : integer(env, 'METRICS_PORT', 0, 1, 65535),
    host: read(env, 'HOST', '127.0.0.1'),
    databaseUrl: url(env, 'DATABASE_URL', 'postgres://postgres@127.0.0.1:5432/landlord', ['postgres:', 'postgresql:']),
    tenantClusterUrl: url(env, 'TENANT_CLUSTER_URL', 'postgres://postgres@127.0.0.1:5432/postgres', ['postgres:', 'postgresql:']),
    redisUrl: url(env, 'REDIS_URL', 'redis://127.0.0.1:6379', ['redis:', 'rediss:']),
    adminKey,
    tenantDbPrefix: prefix,
    queuePrefix,
    tenantMigrationsDir: read(env, 'TENANT_MIGRATIONS_DIR', 'tenant-migrations'),
    secretsBackend: backend,
    masterKey,
    home: read(env, 'LANDLORD_HOME', '.landlord'),
    billingWebhook: Object.freeze({
      url: billingUrl === undefined ? undefined : url(env, 'BILLING_WEBHOOK_URL', billingUrl, ['http:', 'https:']),
      secret: billingSecret,
    }),
    wipeRetentionMs: isoDuration(env, 'WIPE_RETENTION', 'P7D'),
    credentialTtlMs: isoDuration(env, 'CREDENTIAL_TTL', 'PT1H'),
    credentialMaxTtlMs: isoDuration(env, 'CREDENTIAL_MAX_TTL', 'PT4H'),
    vault,
    wakeTimeoutMs: isoDuration(env, 'WAKE_TIMEOUT', 'PT30S'),
    maintenanceEveryMs: shortDuration(env, 'MAINTENANCE_INTERVAL', '60s'),
    stuckAfterMs: isoDuration(env, 'STUCK_AFTER', 'PT15M'),
    historyRetentionMs: isoDuration(env, 'HISTORY_RETENTION', 'P30D'),
    hibernateAfterMs: hibernateAfter === undefined ? undefined : isoDuration(env, 'HIBERNATE_AFTER', hibernateAfter),
    webhookRetryScheduleMs: Object.freeze(scheduleMs as number[]),
    webhookDisableAfterMs: isoDuration(env, 'WEBHOOK_DISABLE_AFTER', 'P5D'),
    webhookTimeoutMs: isoDuration(env, 'WEBHOOK_TIMEOUT', 'PT15S'),
    webhookAllowedNetworks: Object.freeze(allowedNetworks),
    clusterHardening: hardening,
    jobAttempts: integer(env, 'JOB_ATTEMPTS', 5, 1, 100),
    jobBackoffMs: shortDuration(env, 'JOB_BACKOFF', '2s'),
    workerConcurrency: integer(env, 'WORKER_CONCURRENCY', 4, 1, 256),
    jobLockMs: shortDuration(env, 'JOB_LOCK_TIMEOUT', '30s'),
    fleetConcurrency: integer(env, 'FLEET_MIGRATION_CONCURRENCY', 8, 1, 64),
    fleetConnectionSharePct: integer(env, 'FLEET_MIGRATION_CONNECTION_SHARE', 50, 1, 100),
    fleetQuarantineAfter: integer(env, 'FLEET_QUARANTINE_AFTER', 3, 1, 100),
    tenantMigrationTimeoutMs: isoDuration(env, 'TENANT_MIGRATION_TIMEOUT', 'PT1H'),
    rateLimitMax: integer(env, 'RATE_LIMIT_MAX', 1000, 1, 1_000_000),
    rateLimitWindowMs: shortDuration(env, 'RATE_LIMIT_WINDOW', '1m'),
    logLevel,
  })
}
