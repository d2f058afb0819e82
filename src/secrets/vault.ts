// The Vault secrets backend: Landlord keeps no tenant secret of its own.
// Logins come from Vault's database secrets engine (one Vault role per
// tenant, named after its database, whose creation statements make a login of
// the tenant's owner role); each tenant's data key is wrapped by a transit key
// of the same name, which the wipe deletes (crypto-shredding). The control
// database holds lease ids, usernames and transit ciphertexts only.
import { randomBytes, randomUUID } from 'node:crypto'
import type pg from 'pg'
import type { Config, VaultConfig } from '../config.js'
import type { Db } from '../db/index.js'
import { findTenantKey, insertTenantKey, rewrapTenantKey, shredTenantKey } from '../db/keys.js'
import { expiredLeases, findLeaseByKey, insertLease, liveLeases, markAllRevoked, markLeaseRevoked, releaseLeaseKey } from '../db/leases.js'
import type { Tenant } from '../db/schema.js'
import { clusterObjectsNotOurs, vaultUnavailable } from '../errors.js'
import type { Logger } from '../log.js'
import { endLogin } from '../tenancy/logins.js'
import { checkOwnership, onCluster } from '../tenancy/ownership.js'
import type { DestroyReceipt, IssueRequest, IssuedCredentials, SecretsBackend } from './backend.js'
import { open } from './crypto.js'
import { VaultClient, VaultError } from './vault-client.js'
import { connectionConfig, roleConfig } from './vault-statements.js'

/** Transit ciphertexts read `vault:v<version>:...`; a locally wrapped key is binary. */
function isTransitCiphertext(blob: Buffer): boolean {
  return blob.subarray(0, 7).toString() === 'vault:v'
}

export class VaultSecretsBackend implements SecretsBackend {
  readonly name = 'vault' as const
  private readonly client: VaultClient
  private readonly vault: VaultConfig

  constructor(
    private readonly config: Config,
    private readonly db: Db,
    private readonly admin: pg.Pool,
    private readonly log: Logger,
  ) {
    this.vault = config.vault!
    this.client = new VaultClient(this.vault, log)
  }

  /** The database secrets engine connection this instance writes: one per tenant prefix. */
  get connection(): string {
    return `${this.config.tenantDbPrefix}cluster`
  }

  credsPath(tenant: Pick<Tenant, 'database_name'>): string {
    return `${this.vault.dbMount}/creds/${tenant.database_name}`
  }

  /** Authenticates, checks Vault is unsealed and the token may do its work, and writes the cluster connection. */
  async start(): Promise<void> {
    const health = await this.guard(() => this.client.health())
    if (health.sealed) throw new VaultError(503, `Vault at ${this.vault.addr} is sealed`)
    await this.guard(() => this.client.start())
    const paths = this.requiredPaths()
    const caps = await this.guard(() => this.client.request<Record<string, string[]>>('POST', 'sys/capabilities-self', { paths: Object.keys(paths) }))
    for (const [path, needed] of Object.entries(paths)) {
      const granted = caps.data?.[path] ?? []
      if (granted.includes('root')) continue
      const missing = needed.filter((c) => !granted.includes(c))
      if (missing.length > 0) throw new VaultError(403, `the Vault token lacks "${missing.join('", "')}" on ${path}`)
    }
    await this.guard(() => this.client.request('POST', `${this.vault.dbMount}/config/${this.connection}`, connectionConfig(this.config)))
  }

  close(): void {
    this.client.close()
  }

  /** What /readyz reports. */
  async ready(): Promise<{ ok: boolean; detail: string }> {
    try {
      const h = await this.client.health()
      return h.sealed ? { ok: false, detail: 'sealed' } : { ok: true, detail: 'unsealed' }
    } catch (err) {
      return { ok: false, detail: (err as Error).message }
    }
  }

  /** Each path Landlord uses, with the capabilities it needs there (a tenant-shaped path stands for all). */
  private requiredPaths(): Record<string, string[]> {
    const { dbMount, transitMount } = this.vault
    const sample = `${this.config.tenantDbPrefix}sample`
    return {
      [`${dbMount}/config/${this.connection}`]: ['create', 'update'],
      [`${dbMount}/roles/${sample}`]: ['create', 'update', 'delete'],
      [`${dbMount}/creds/${sample}`]: ['read'],
      [`sys/leases/revoke`]: ['update'],
      // revoke-prefix is a sudo path.
      [`sys/leases/revoke-prefix/${dbMount}/creds/${sample}`]: ['update', 'sudo'],
      [`${transitMount}/keys/${sample}`]: ['create', 'update', 'delete'],
      [`${transitMount}/keys/${sample}/config`]: ['update'],
      [`${transitMount}/encrypt/${sample}`]: ['update'],
      [`${transitMount}/decrypt/${sample}`]: ['update'],
    }
  }

  /** Runs a Vault call; Vault being sealed, down or failing becomes a 503 with Retry-After. */
  private async guard<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn()
    } catch (err) {
      if (err instanceof VaultError && err.unavailable) throw vaultUnavailable(err.message)
      throw err
    }
  }

  /**
   * Moves a tenant provisioned under the local backend to Vault: its role and
   * transit key, and its data key unwrapped with the master key and wrapped
   * again by the transit key. Idempotent: a key wrapped by Vault already is left.
   */
  async adopt(tenant: Tenant, masterKey: Buffer): Promise<'moved' | 'already' | 'no key'> {
    await this.setup(tenant)
    const row = await findTenantKey(this.db, tenant.id)
    if (!row?.wrapped_key) return 'no key'
    if (isTransitCiphertext(row.wrapped_key)) return 'already'
    const wrapped = Buffer.from(await this.encrypt(tenant, open(masterKey, row.wrapped_key, tenant.id)))
    await rewrapTenantKey(this.db, tenant.id, row.wrapped_key, wrapped)
    return 'moved'
  }

  async setup(tenant: Tenant): Promise<void> {
    const { dbMount, transitMount } = this.vault
    await this.guard(() => this.client.request('POST', `${dbMount}/roles/${tenant.database_name}`, roleConfig(this.config, this.connection, tenant.owner_role)))
    await this.guard(() =>
      this.client.request('POST', `${transitMount}/keys/${tenant.database_name}`, { type: 'aes256-gcm96', exportable: false, allow_plaintext_backup: false }),
    )
    if (!(await findTenantKey(this.db, tenant.id))) {
      const wrapped = await this.encrypt(tenant, randomBytes(32))
      await insertTenantKey(this.db, tenant.id, Buffer.from(wrapped))
    }
  }

  private async encrypt(tenant: Tenant, plaintext: Buffer): Promise<string> {
    const res = await this.guard(() =>
      this.client.request<{ ciphertext: string }>('POST', `${this.vault.transitMount}/encrypt/${tenant.database_name}`, {
        plaintext: plaintext.toString('base64'),
        context: Buffer.from(tenant.id).toString('base64'),
      }),
    )
    return res.data!.ciphertext
  }

  private async decrypt(tenant: Tenant, ciphertext: string): Promise<Buffer> {
    const res = await this.guard(() =>
      this.client.request<{ plaintext: string }>('POST', `${this.vault.transitMount}/decrypt/${tenant.database_name}`, {
        ciphertext,
        context: Buffer.from(tenant.id).toString('base64'),
      }),
    )
    return Buffer.from(res.data!.plaintext, 'base64')
  }

  async issue(tenant: Tenant, request: IssueRequest): Promise<IssuedCredentials> {
    const found = await checkOwnership(this.admin, onCluster(tenant))
    if (!found.ours) throw clusterObjectsNotOurs(found.reason)
    if (request.idempotencyKey !== undefined) {
      const existing = await findLeaseByKey(this.db, tenant.id, request.principal, request.idempotencyKey)
      if (existing && existing.revoked_at === null && existing.expires_at > new Date() && existing.secret && existing.external_id) {
        const password = (await this.decrypt(tenant, existing.secret.toString())).toString()
        return { lease_id: existing.external_id, username: existing.username, password, expires_at: existing.expires_at }
      }
      if (existing) await releaseLeaseKey(this.db, existing.id)
    }
    const creds = await this.guard(() => this.client.request<{ username: string; password: string }>('GET', this.credsPath(tenant)))
    const leaseId = creds.lease_id!
    const { username, password } = creds.data!
    // Whole seconds: what Vault reports and what the client sees agree.
    const expires = new Date(Math.floor(Date.now() / 1000 + (creds.lease_duration ?? 0)) * 1000)
    // The password is kept only as transit ciphertext, and only to replay an idempotent request.
    const secret = request.idempotencyKey === undefined ? null : Buffer.from(await this.encrypt(tenant, Buffer.from(password)))
    const inserted = await insertLease(this.db, {
      id: randomUUID(),
      tenant_id: tenant.id,
      backend: this.name,
      username,
      principal: request.principal,
      idempotency_key: request.idempotencyKey ?? null,
      secret,
      external_id: leaseId,
      expires_at: expires,
    })
    if (!inserted) {
      // A concurrent request with the same key won: give this lease back, answer with the winner's.
      await this.revokeLease(leaseId, username)
      return this.issue(tenant, request)
    }
    this.log.info({ tenantId: tenant.id, leaseId, expiresAt: expires }, 'credentials issued')
    return { lease_id: leaseId, username, password, expires_at: expires }
  }

  /** Revokes one Vault lease and ends its sessions (Vault's revocation alone does not end them). */
  private async revokeLease(leaseId: string, username: string): Promise<void> {
    try {
      // sync: answered once Vault has revoked it (Vault's default answers 202 at once and revokes later).
      await this.guard(() => this.client.request('PUT', 'sys/leases/revoke', { lease_id: leaseId, sync: true }))
    } catch (err) {
      // An unknown or expired lease: nothing left to revoke in Vault.
      if (!(err instanceof VaultError && (err.status === 400 || err.status === 404))) throw err
    }
    await endLogin(this.admin, username)
  }

  async revokeAll(tenant: Tenant, opts: { issuedBefore?: Date } = {}): Promise<number> {
    const leases = await liveLeases(this.db, tenant.id, opts.issuedBefore)
    if (opts.issuedBefore) {
      for (const lease of leases) {
        // A lease recorded without Vault's id (a local one, before a migration) has nothing to revoke in Vault.
        if (lease.external_id) await this.revokeLease(lease.external_id, lease.username)
        else await endLogin(this.admin, lease.username)
        await markLeaseRevoked(this.db, lease.id)
      }
    } else {
      // Everything under the tenant's role, whether or not Landlord recorded it (a crash between issue and record).
      await this.guard(() => this.client.request('PUT', `sys/leases/revoke-prefix/${this.credsPath(tenant)}`, { sync: true }))
      for (const lease of leases) await endLogin(this.admin, lease.username)
      await markAllRevoked(this.db, tenant.id)
    }
    if (leases.length > 0) this.log.info({ tenantId: tenant.id, count: leases.length }, 'leases revoked')
    return leases.length
  }

  /** Vault revokes expired leases itself; this ends what is left of them here and records it. */
  async reapExpired(): Promise<number> {
    const expired = await expiredLeases(this.db, this.name, 500)
    for (const lease of expired) {
      await endLogin(this.admin, lease.username)
      await markLeaseRevoked(this.db, lease.id)
    }
    return expired.length
  }

  async destroy(tenant: Tenant): Promise<DestroyReceipt> {
    const { dbMount, transitMount } = this.vault
    const leases_revoked = await this.revokeAll(tenant)
    await this.guard(() => this.client.request('DELETE', `${dbMount}/roles/${tenant.database_name}`))
    const key = `${transitMount}/keys/${tenant.database_name}`
    try {
      await this.guard(() => this.client.request('POST', `${key}/config`, { deletion_allowed: true }))
      await this.guard(() => this.client.request('DELETE', key))
    } catch (err) {
      // Gone already (an earlier attempt deleted it): Vault says "no existing key named ..." (400) or 404.
      const gone = err instanceof VaultError && (err.status === 404 || (err.status === 400 && /no existing key/.test(err.message)))
      if (!gone) throw err
    }
    const key_destroyed = await shredTenantKey(this.db, tenant.id)
    return {
      leases_revoked,
      key_destroyed,
      removed: {
        leases: `revoked every lease under ${this.credsPath(tenant)}`,
        role: `deleted ${dbMount}/roles/${tenant.database_name}`,
        transit_key: `deleted ${key} (deletion_allowed set first)`,
      },
    }
  }
}
