// The fake Vault's expiration manager and its sys/leases endpoints: every
// secret with a lease is revoked when the lease runs out, when it is revoked by
// id or by prefix, or when the token that created it goes (vault/expiration.go,
// the handlers in vault/logical_system.go).
import type { Route, VaultRequest } from './fake-vault-route.js'
import {
  badRequest,
  base62,
  calculateTtl,
  nil,
  parseDurationSecond,
  respond,
  type Outcome,
  type SystemTtl,
} from './fake-vault-util.js'

/** What the engine that issued a secret keeps to renew or revoke it later (Secret.InternalData). */
export interface LeaseInternal {
  username: string
  role: string
  dbName: string
  revocationStatements: string[]
}

export interface Lease {
  id: string
  namespace: string
  /** The request path that created it, relative to the namespace. */
  path: string
  tokenId: string
  issueMs: number
  expireMs: number
  lastRenewalMs?: number
  renewable: boolean
  internal: LeaseInternal
  /** `live`, or `revoking` once revocation was asked for or the lease ran out. */
  state: 'live' | 'revoking' | 'irrevocable'
  revokeAttempts: number
  nextAttemptMs: number
  lastError?: string
  reason?: RevocationReason
}

export type RevocationReason = 'revoke' | 'revoke-prefix' | 'expired' | 'token'

export interface Revocation {
  leaseId: string
  namespace: string
  username: string
  reason: RevocationReason
  at: Date
}

/** What the engine behind a lease does on renewal and revocation. */
export interface LeaseBackend {
  /** Renews the secret; answers the role's TTLs for the core to apply, or a refusal. */
  renew(lease: Lease, increment: number): Promise<{ backendTtl: number; backendMaxTtl: number } | { error: string }>
  /** Revokes the secret; throws when it could not. */
  revoke(lease: Lease): Promise<void>
}

// expiration.go gives up after maxRevokeAttempts and marks the lease irrevocable.
const MAX_REVOKE_ATTEMPTS = 6

export class LeaseManager {
  private readonly leases = new Map<string, Lease>()
  private readonly inFlight = new Map<string, Promise<string | undefined>>()
  readonly revocations: Revocation[] = []
  /** Called when a lease is revoked lazily, so the sweep can run at once as Vault's timer would. */
  onLazyRevoke: () => void = () => {}

  constructor(
    private readonly sys: SystemTtl,
    private readonly now: () => number,
    private readonly backend: () => LeaseBackend,
  ) {}

  /** expiration.go Register: the id is the request path plus 24 base62 characters (and `.nsId`). */
  register(req: VaultRequest, ttl: number, internal: LeaseInternal): Lease {
    const now = this.now()
    const lease: Lease = {
      id: `${req.path}/${base62(24)}${req.nsId ? `.${req.nsId}` : ''}`,
      namespace: req.namespace,
      path: req.path,
      tokenId: req.token.id,
      issueMs: now,
      expireMs: now + ttl * 1000,
      renewable: true,
      internal,
      state: 'live',
      revokeAttempts: 0,
      nextAttemptMs: 0,
    }
    this.leases.set(lease.id, lease)
    return lease
  }

  list(namespace?: string): Lease[] {
    return [...this.leases.values()].filter((l) => namespace === undefined || l.namespace === namespace)
  }

  routes(): Route[] {
    const leaseIdOf = (req: VaultRequest) =>
      typeof req.data.lease_id === 'string' && req.data.lease_id !== '' ? req.data.lease_id : (req.params.id ?? '')
    const sync = (req: VaultRequest) => req.data.sync === true || req.data.sync === 'true'
    return [
      {
        pattern: /^sys\/leases\/lookup$/,
        mountType: 'system',
        fields: ['lease_id'],
        handlers: { update: (req) => this.lookup(req.namespace, leaseIdOf(req)) },
      },
      {
        // sys/renew is the pre-0.8 path; Vault still serves both.
        pattern: /^sys\/(?:leases\/)?renew(?:\/(?<id>.+))?$/,
        mountType: 'system',
        fields: ['lease_id', 'url_lease_id', 'increment'],
        handlers: { update: (req) => this.renew(req.namespace, leaseIdOf(req), req.data.increment) },
      },
      {
        pattern: /^sys\/(?:leases\/)?revoke(?:\/(?<id>.+))?$/,
        mountType: 'system',
        fields: ['lease_id', 'url_lease_id', 'sync'],
        handlers: { update: (req) => this.revokeOne(req.namespace, leaseIdOf(req), sync(req)) },
      },
      {
        pattern: /^sys\/(?:leases\/)?revoke-prefix\/(?<prefix>.+)$/,
        mountType: 'system',
        rootProtected: true,
        fields: ['prefix', 'sync'],
        handlers: { update: (req) => this.revokePrefix(req.namespace, req.params.prefix ?? '', sync(req)) },
      },
    ]
  }

  private lookup(namespace: string, leaseId: string): Outcome {
    if (leaseId === '') return badRequest('lease_id must be specified')
    const lease = this.leases.get(leaseId)
    if (!lease || lease.namespace !== namespace) return badRequest('invalid lease')
    const now = this.now()
    return respond({
      data: {
        id: lease.id,
        issue_time: new Date(lease.issueMs).toISOString(),
        expire_time: new Date(lease.expireMs).toISOString(),
        last_renewal: lease.lastRenewalMs === undefined ? null : new Date(lease.lastRenewalMs).toISOString(),
        renewable: this.renewable(lease) === undefined,
        ttl: Math.max(0, Math.trunc((lease.expireMs - Math.round(now / 1000) * 1000) / 1000)),
      },
    })
  }

  /** leaseEntry.renewable(): undefined when it is, else why not. */
  private renewable(lease: Lease): string | undefined {
    if (lease.state === 'irrevocable') return 'lease is expired and has failed previous revocation attempts'
    if (lease.expireMs <= this.now()) return 'lease expired'
    if (!lease.renewable) return 'lease is not renewable'
    return undefined
  }

  private async renew(namespace: string, leaseId: string, rawIncrement: unknown): Promise<Outcome> {
    if (leaseId === '') return badRequest('lease_id must be specified')
    const increment = parseDurationSecond(rawIncrement)
    if (increment === undefined) return badRequest(`error converting input ${JSON.stringify(rawIncrement)} for field "increment"`)
    const lease = this.leases.get(leaseId)
    // handleRenew answers every expiration-manager error as a 400 with its message.
    if (!lease) return badRequest('lease not found')
    const refusal = this.renewable(lease)
    if (refusal) return badRequest(refusal)
    if (lease.namespace !== namespace) return badRequest('cannot renew a lease across namespaces')
    const renewed = await this.backend().renew(lease, increment)
    if ('error' in renewed) return badRequest(renewed.error)
    const now = this.now()
    const ttl = calculateTtl(this.sys, { increment, ...renewed, startMs: lease.issueMs, nowMs: now })
    if ('error' in ttl) return badRequest(ttl.error)
    lease.expireMs = now + ttl.ttl * 1000
    lease.lastRenewalMs = now
    return respond({ secret: { leaseId: lease.id, leaseDuration: ttl.ttl, renewable: true }, warnings: ttl.warnings })
  }

  /** handleRevoke: 202 and revoked in the background, or 204 once revoked with sync=true. */
  private async revokeOne(namespace: string, leaseId: string, sync: boolean): Promise<Outcome> {
    if (leaseId === '') return badRequest('lease_id must be specified')
    const lease = this.leases.get(leaseId)
    // Revoking a lease that is not there succeeds: it is already gone.
    if (lease && lease.namespace === namespace) {
      if (sync) {
        const error = await this.attempt(lease, 'revoke')
        if (error) return badRequest(`failed to revoke entry: resp: (*logical.Response)(nil) err: ${error}`)
        return nil
      }
      this.lazyRevoke(lease, 'revoke')
    }
    return sync ? nil : respond({}, 202)
  }

  /** expiration.go revokePrefixCommon: an exact lease id, else everything under `prefix/`. */
  private async revokePrefix(namespace: string, rawPrefix: string, sync: boolean): Promise<Outcome> {
    let prefix = rawPrefix
    const exact = this.leases.get(prefix)
    const targets: Lease[] = []
    if (!prefix.endsWith('/') && exact && exact.namespace === namespace) targets.push(exact)
    else {
      if (!prefix.endsWith('/')) prefix += '/'
      targets.push(...this.list(namespace).filter((l) => l.id.startsWith(prefix)))
    }
    for (const [idx, lease] of targets.entries()) {
      if (!sync) {
        this.lazyRevoke(lease, 'revoke-prefix')
        continue
      }
      const error = await this.attempt(lease, 'revoke-prefix')
      if (error) return badRequest(`failed to revoke "${lease.id}" (${idx + 1} / ${targets.length}): ${error}`)
    }
    return sync ? nil : respond({}, 202)
  }

  /** LazyRevoke: the lease expires now and the background sweep revokes it. */
  private lazyRevoke(lease: Lease, reason: RevocationReason): void {
    if (lease.state === 'live') {
      lease.state = 'revoking'
      lease.reason = reason
      lease.expireMs = Math.min(lease.expireMs, this.now())
      lease.nextAttemptMs = 0
      this.onLazyRevoke()
    }
  }

  /** Every lease created with a token goes when the token does (service token lease handling). */
  revokeByToken(tokenId: string): void {
    for (const lease of this.leases.values()) if (lease.tokenId === tokenId) this.lazyRevoke(lease, 'token')
  }

  /** One revocation attempt (or the one under way): undefined once revoked, else the error. */
  private attempt(lease: Lease, reason: RevocationReason): Promise<string | undefined> {
    const running = this.inFlight.get(lease.id)
    if (running) return running
    const attempt = this.revoke(lease, reason).finally(() => this.inFlight.delete(lease.id))
    this.inFlight.set(lease.id, attempt)
    return attempt
  }

  private async revoke(lease: Lease, reason: RevocationReason): Promise<string | undefined> {
    try {
      await this.backend().revoke(lease)
      this.leases.delete(lease.id)
      this.revocations.push({ leaseId: lease.id, namespace: lease.namespace, username: lease.internal.username, reason, at: new Date() })
      return undefined
    } catch (err) {
      lease.revokeAttempts += 1
      lease.lastError = err instanceof Error ? err.message : String(err)
      if (lease.revokeAttempts >= MAX_REVOKE_ATTEMPTS) lease.state = 'irrevocable'
      // Backoff between attempts, short enough for tests with 1-2 s TTLs.
      lease.nextAttemptMs = this.now() + 250 * 2 ** lease.revokeAttempts
      return lease.lastError
    }
  }

  /** The expiration timers: revokes what ran out or was revoked lazily. Never rejects. */
  async sweep(): Promise<void> {
    const now = this.now()
    const due = [...this.leases.values()].filter((l) => l.state !== 'irrevocable' && l.expireMs <= now && l.nextAttemptMs <= now)
    await Promise.all(
      due.map((lease) => {
        if (lease.state === 'live') {
          lease.state = 'revoking'
          lease.reason = 'expired'
        }
        return this.attempt(lease, lease.reason ?? 'expired')
      }),
    )
  }
}
