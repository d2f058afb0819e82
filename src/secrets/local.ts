// The built-in secrets backend. Leases are Postgres login roles named
// `<owner>-<id>` (slugs cannot contain '-', so no tenant's names prefix
// another's), members of the tenant's owner role, with VALID UNTIL set and a
// SCRAM verifier computed here. Each tenant has a data key wrapped by the
// master key; lease passwords are kept only encrypted under it, for idempotent
// replays, and destroying the key on wipe leaves them unreadable.
import { randomBytes, randomUUID } from 'node:crypto'
import { sql } from 'kysely'
import pg from 'pg'
import type { Db } from '../db/index.js'
import type { Tenant } from '../db/schema.js'
import { clusterObjectsNotOurs, LandlordError } from '../errors.js'
import type { Logger } from '../log.js'
import { quoteIdent } from '../tenancy/identifiers.js'
import { checkOwnership, onCluster } from '../tenancy/ownership.js'
import { LeaseRevokedError, type DestroyReceipt, type IssueRequest, type IssuedCredentials, type SecretsBackend } from './backend.js'
import { open, scramVerifier, seal } from './crypto.js'

export class LocalSecretsBackend implements SecretsBackend {
  readonly name = 'local' as const

  constructor(
    private readonly db: Db,
    private readonly admin: pg.Pool,
    private readonly masterKey: Buffer,
    private readonly log: Logger,
  ) {}

  async setup(tenant: Tenant): Promise<void> {
    await this.db
      .insertInto('tenant_keys')
      .values({ tenant_id: tenant.id, wrapped_key: seal(this.masterKey, randomBytes(32), tenant.id) })
      .onConflict((oc) => oc.column('tenant_id').doNothing())
      .execute()
  }

  private async dataKey(tenant: Tenant): Promise<Buffer> {
    const row = await this.db.selectFrom('tenant_keys').selectAll().where('tenant_id', '=', tenant.id).executeTakeFirst()
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
      const existing = await this.db
        .selectFrom('leases')
        .selectAll()
        .where('tenant_id', '=', tenant.id)
        .where('principal', '=', request.principal)
        .where('idempotency_key', '=', request.idempotencyKey)
        .executeTakeFirst()
      if (existing && existing.revoked_at === null && existing.expires_at > new Date() && existing.secret) {
        await this.untilRoleExists(existing)
        const password = open(key, existing.secret, existing.id).toString()
        return { lease_id: existing.id, username: existing.username, password, expires_at: existing.expires_at }
      }
      if (existing) {
        // Spent: free the key for a new lease.
        await this.db.updateTable('leases').set({ idempotency_key: null }).where('id', '=', existing.id).execute()
      }
    }
    const id = randomUUID()
    const username = `${tenant.owner_role}-${id.replace(/-/g, '').slice(0, 12)}`
    const password = randomBytes(24).toString('base64url')
    // Whole seconds: VALID UNTIL and expires_at must agree exactly.
    const expires = new Date(Math.floor((Date.now() + request.ttlMs) / 1000) * 1000)
    // The row comes first, so that a crash after CREATE ROLE leaves a lease the reaper knows.
    const inserted = await this.db
      .insertInto('leases')
      .values({
        id,
        tenant_id: tenant.id,
        backend: this.name,
        username,
        principal: request.principal,
        idempotency_key: request.idempotencyKey ?? null,
        secret: seal(key, Buffer.from(password), id),
        expires_at: expires,
      })
      .onConflict((oc) =>
        oc.columns(['tenant_id', 'principal', 'idempotency_key']).where('idempotency_key', 'is not', null).doNothing(),
      )
      .executeTakeFirst()
    // A concurrent request with the same idempotency key won: answer with its lease.
    if (inserted.numInsertedOrUpdatedRows === 0n) return this.issue(tenant, request)
    try {
      const role = quoteIdent(username)
      await this.admin.query(
        `CREATE ROLE ${role} LOGIN PASSWORD ${pg.escapeLiteral(scramVerifier(password))} ` +
          `VALID UNTIL ${pg.escapeLiteral(expires.toISOString())} IN ROLE ${quoteIdent(tenant.owner_role)}`,
      )
      // Sessions act as the owner, so whatever they create belongs to the tenant, not to this lease.
      await this.admin.query(`ALTER ROLE ${role} SET role = ${pg.escapeLiteral(tenant.owner_role)}`)
    } catch (err) {
      await this.revoke(tenant, { id, username })
      throw err
    }
    // A rotation or fence that ran between the row and the role found no role to
    // drop: it marked the row revoked, and this lease must not outlive that.
    const row = await this.db.selectFrom('leases').select('revoked_at').where('id', '=', id).executeTakeFirstOrThrow()
    if (row.revoked_at !== null) {
      await this.dropLeaseRole(tenant, { id, username })
      throw new LeaseRevokedError()
    }
    this.log.info({ tenantId: tenant.id, leaseId: id, expiresAt: expires }, 'credentials issued')
    return { lease_id: id, username, password, expires_at: expires }
  }

  /** A concurrent request with the same key may still be creating the role: answer once it exists. */
  private async untilRoleExists(lease: { id: string; username: string }): Promise<void> {
    const deadline = Date.now() + 5000
    for (;;) {
      const role = await this.admin.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [lease.username])
      if (role.rowCount) return
      const row = await this.db.selectFrom('leases').select('revoked_at').where('id', '=', lease.id).executeTakeFirst()
      if (!row || row.revoked_at !== null) throw new LeaseRevokedError()
      if (Date.now() > deadline) {
        throw new LandlordError('LANDLORD_IDEMPOTENCY_IN_PROGRESS', 409, 'Conflict', 'A request with this Idempotency-Key is still being processed; retry later.')
      }
      await new Promise((r) => setTimeout(r, 25))
    }
  }

  /**
   * Ends one lease: NOLOGIN first (no new session, even under trust auth), then
   * its sessions, then the role. A role still owning objects in a fenced
   * database stays as NOLOGIN until the tenant is wiped.
   */
  private async revoke(tenant: Pick<Tenant, 'id'>, lease: { id: string; username: string }): Promise<void> {
    await this.dropLeaseRole(tenant, lease)
    await this.db
      .updateTable('leases')
      .set({ revoked_at: sql<Date>`now()` })
      .where('id', '=', lease.id)
      .where('revoked_at', 'is', null)
      .execute()
  }

  private async dropLeaseRole(tenant: Pick<Tenant, 'id'>, lease: { id: string; username: string }): Promise<void> {
    const role = quoteIdent(lease.username)
    try {
      await this.admin.query(`ALTER ROLE ${role} NOLOGIN`)
    } catch (err) {
      // 42704: already dropped, by a concurrent revoke or the reaper.
      if ((err as { code?: string }).code === '42704') return
      throw err
    }
    await this.admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1', [lease.username])
    try {
      await this.admin.query(`DROP ROLE IF EXISTS ${role}`)
    } catch (err) {
      if ((err as { code?: string }).code !== '2BP01') throw err
      this.log.warn({ tenantId: tenant.id, leaseId: lease.id }, 'lease role still owns objects; left as NOLOGIN until wipe')
    }
  }

  async revokeAll(tenant: Tenant, opts: { issuedBefore?: Date } = {}): Promise<number> {
    let q = this.db.selectFrom('leases').select(['id', 'username']).where('tenant_id', '=', tenant.id).where('revoked_at', 'is', null)
    if (opts.issuedBefore) q = q.where('created_at', '<=', opts.issuedBefore)
    const leases = await q.execute()
    for (const lease of leases) await this.revoke(tenant, lease)
    if (leases.length > 0) this.log.info({ tenantId: tenant.id, count: leases.length }, 'leases revoked')
    return leases.length
  }

  async reapExpired(): Promise<number> {
    const expired = await this.db
      .selectFrom('leases')
      .select(['id', 'username', 'tenant_id'])
      .where('revoked_at', 'is', null)
      .where('backend', '=', this.name)
      .where('expires_at', '<=', new Date())
      .limit(500)
      .execute()
    for (const lease of expired) await this.revoke({ id: lease.tenant_id }, lease)
    return expired.length
  }

  async destroy(tenant: Tenant): Promise<DestroyReceipt> {
    const leases_revoked = await this.revokeAll(tenant)
    const destroyed = await this.db
      .updateTable('tenant_keys')
      .set({ wrapped_key: null, destroyed_at: sql<Date>`now()` })
      .where('tenant_id', '=', tenant.id)
      .where('wrapped_key', 'is not', null)
      .executeTakeFirst()
    await this.db.updateTable('leases').set({ secret: null }).where('tenant_id', '=', tenant.id).execute()
    return { leases_revoked, key_destroyed: destroyed.numUpdatedRows > 0n }
  }
}
