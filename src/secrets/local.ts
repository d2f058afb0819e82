// The built-in secrets backend. Leases are Postgres login roles named
// `<owner>-<id>` (slugs cannot contain '-', so no tenant's names prefix
// another's), members of the tenant's owner role, with VALID UNTIL set and a
// SCRAM verifier computed here. Each tenant has a data key wrapped by the
// master key; lease passwords are kept only encrypted under it, for idempotent
// replays, and destroying the key on wipe leaves them unreadable.
import { randomBytes, randomUUID } from 'node:crypto'
import pg from 'pg'
import type { Db } from '../db/index.js'
import { findTenantKey, insertTenantKey, shredTenantKey } from '../db/keys.js'
import {
  expiredLeases,
  findLeaseByKey,
  insertLease,
  isLeaseRevoked,
  liveLeases,
  markLeaseRevoked,
  releaseLeaseKey,
} from '../db/leases.js'
import type { Tenant } from '../db/schema.js'
import { clusterObjectsNotOurs, idempotencyInProgress } from '../errors.js'
import type { Logger } from '../log.js'
import { pollUntil } from '../poll.js'
import { createLogin, dropLogin } from '../tenancy/logins.js'
import { checkOwnership, onCluster } from '../tenancy/ownership.js'
import { roleExists } from '../tenancy/roles.js'
import { LeaseRevokedError, type DestroyReceipt, type IssueRequest, type IssuedCredentials, type SecretsBackend } from './backend.js'
import { open, seal } from './crypto.js'

export class LocalSecretsBackend implements SecretsBackend {
  readonly name = 'local' as const

  constructor(
    private readonly db: Db,
    private readonly admin: pg.Pool,
    private readonly masterKey: Buffer,
    private readonly log: Logger,
  ) {}

  async setup(tenant: Tenant): Promise<void> {
    await insertTenantKey(this.db, tenant.id, seal(this.masterKey, randomBytes(32), tenant.id))
  }

  private async dataKey(tenant: Tenant): Promise<Buffer> {
    const row = await findTenantKey(this.db, tenant.id)
    if (!row) {
      await this.setup(tenant) // tenants provisioned before keys existed
      return this.dataKey(tenant)
    }
    if (!row.wrapped_key) throw new Error(`the data key of tenant ${tenant.id} was destroyed`)
    return open(this.masterKey, row.wrapped_key, tenant.id)
  }

  async issue(tenant: Tenant, request: IssueRequest): Promise<IssuedCredentials> {
    // The login joins the owner role and reaches the database: both must be this tenant's.
    const found = await checkOwnership(this.admin, onCluster(tenant))
    if (!found.ours) throw clusterObjectsNotOurs(found.reason)
    if (found.role === 'absent' || found.database === 'absent') {
      throw clusterObjectsNotOurs(`the ${found.role === 'absent' ? `role ${tenant.owner_role}` : `database ${tenant.database_name}`} of this tenant is missing`)
    }
    const key = await this.dataKey(tenant)
    if (request.idempotencyKey !== undefined) {
      const existing = await findLeaseByKey(this.db, tenant.id, request.principal, request.idempotencyKey)
      if (existing && existing.revoked_at === null && existing.expires_at > new Date() && existing.secret) {
        await this.untilRoleExists(existing)
        const password = open(key, existing.secret, existing.id).toString()
        return { lease_id: existing.id, username: existing.username, password, expires_at: existing.expires_at }
      }
      if (existing) {
        // Spent: free the key for a new lease.
        await releaseLeaseKey(this.db, existing.id)
      }
    }
    const id = randomUUID()
    const username = `${tenant.owner_role}-${id.replace(/-/g, '').slice(0, 12)}`
    const password = randomBytes(24).toString('base64url')
    // Whole seconds: VALID UNTIL and expires_at must agree exactly.
    const expires = new Date(Math.floor((Date.now() + request.ttlMs) / 1000) * 1000)
    // The row comes first, so that a crash after CREATE ROLE leaves a lease the reaper knows.
    const inserted = await insertLease(this.db, {
      id,
      tenant_id: tenant.id,
      backend: this.name,
      username,
      principal: request.principal,
      idempotency_key: request.idempotencyKey ?? null,
      secret: seal(key, Buffer.from(password), id),
      expires_at: expires,
    })
    // A concurrent request with the same idempotency key won: answer with its lease.
    if (!inserted) return this.issue(tenant, request)
    try {
      // Sessions act as the owner, so whatever they create belongs to the tenant, not to this lease.
      await createLogin(this.admin, username, password, expires, tenant.owner_role)
    } catch (err) {
      await this.revoke(tenant, { id, username })
      throw err
    }
    // A rotation or fence that ran between the row and the role found no role to
    // drop: it marked the row revoked, and this lease must not outlive that.
    if (await isLeaseRevoked(this.db, id)) {
      await this.dropLeaseRole(tenant, { id, username })
      throw new LeaseRevokedError()
    }
    this.log.info({ tenantId: tenant.id, leaseId: id, expiresAt: expires }, 'credentials issued')
    return { lease_id: id, username, password, expires_at: expires }
  }

  /** A concurrent request with the same key may still be creating the role: answer once it exists. */
  private async untilRoleExists(lease: { id: string; username: string }): Promise<void> {
    const outcome = await pollUntil(
      async () => {
        if (await roleExists(this.admin, lease.username)) return 'exists' as const
        if (await isLeaseRevoked(this.db, lease.id)) return 'revoked' as const
        return undefined
      },
      { timeoutMs: 5000 },
    )
    if (outcome === 'revoked') throw new LeaseRevokedError()
    if (outcome === undefined) throw idempotencyInProgress()
  }

  /**
   * Ends one lease: its sessions, NOLOGIN (no new session, even under trust
   * auth), then the role. A role still owning objects in a fenced database
   * stays as NOLOGIN until the tenant is wiped.
   */
  private async revoke(tenant: Pick<Tenant, 'id'>, lease: { id: string; username: string }): Promise<void> {
    await this.dropLeaseRole(tenant, lease)
    await markLeaseRevoked(this.db, lease.id)
  }

  private async dropLeaseRole(tenant: Pick<Tenant, 'id'>, lease: { id: string; username: string }): Promise<void> {
    if ((await dropLogin(this.admin, lease.username)) === 'kept') {
      this.log.warn({ tenantId: tenant.id, leaseId: lease.id }, 'lease role still owns objects; left as NOLOGIN until wipe')
    }
  }

  async revokeAll(tenant: Tenant, opts: { issuedBefore?: Date } = {}): Promise<number> {
    const leases = await liveLeases(this.db, tenant.id, opts.issuedBefore)
    for (const lease of leases) await this.revoke(tenant, lease)
    if (leases.length > 0) this.log.info({ tenantId: tenant.id, count: leases.length }, 'leases revoked')
    return leases.length
  }

  async reapExpired(): Promise<number> {
    const expired = await expiredLeases(this.db, this.name, 500)
    for (const lease of expired) await this.revoke({ id: lease.tenant_id }, lease)
    return expired.length
  }

  async destroy(tenant: Tenant): Promise<DestroyReceipt> {
    const leases_revoked = await this.revokeAll(tenant)
    return { leases_revoked, key_destroyed: await shredTenantKey(this.db, tenant.id) }
  }
}
