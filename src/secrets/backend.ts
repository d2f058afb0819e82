// What Landlord needs from a secrets backend: per-tenant key material and
// short-lived login credentials that can be revoked at once.
import type { Tenant } from '../db/schema.js'

export interface IssuedCredentials {
  lease_id: string
  username: string
  password: string
  expires_at: Date
}

export interface IssueRequest {
  principal: string
  ttlMs: number
  /** The same key from the same principal returns the same live lease. */
  idempotencyKey?: string
}

export interface DestroyReceipt {
  leases_revoked: number
  key_destroyed: boolean
  /** What the backend removed outside the control database, for the wipe receipt (e.g. Vault's role and transit key). */
  removed?: Record<string, string>
}

/** The lease was revoked (rotation, suspension) while it was being issued. */
export class LeaseRevokedError extends Error {
  constructor() {
    super('the lease was revoked while it was being issued')
    this.name = 'LeaseRevokedError'
  }
}

export interface SecretsBackend {
  readonly name: 'local' | 'vault'
  /** Connects and checks what the backend needs, before anything is served. */
  start?(): Promise<void>
  close?(): void
  /** What /readyz says of the backend. */
  ready?(): Promise<{ ok: boolean; detail: string }>
  /** Where a client's credentials come from, for GET /tenants/:id/connection (never a secret). */
  credsPath?(tenant: Pick<Tenant, 'database_name'>): string
  /** Prepares the tenant's key material during provisioning. Safe to run twice. */
  setup(tenant: Tenant): Promise<void>
  /** A login role valid until `expires_at`, member of the tenant's owner role. */
  issue(tenant: Tenant, request: IssueRequest): Promise<IssuedCredentials>
  /** Revokes every live lease (issued before `issuedBefore`, if given) and ends its sessions. */
  revokeAll(tenant: Tenant, opts?: { issuedBefore?: Date }): Promise<number>
  /** Revokes leases past their expiry, across tenants. */
  reapExpired(): Promise<number>
  /** Revokes everything and destroys the tenant's key material for good. */
  destroy(tenant: Tenant): Promise<DestroyReceipt>
}
