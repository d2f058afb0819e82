// Tokens, the AppRole login and ACL policies of the fake Vault: who may call
// what (vault/acl.go, vault/policy_store.go), how a token lives and is renewed
// (vault/token_store.go, vault/expiration.go RenewToken) and what an AppRole
// login hands out (builtin/credential/approle/path_login.go).
import { randomUUID } from 'node:crypto'
import {
  badRequest,
  base62,
  calculateTtl,
  internalError,
  parseDurationSecond,
  respond,
  type Outcome,
  type SystemTtl,
} from './fake-vault-util.js'

export type Capability = 'create' | 'read' | 'update' | 'patch' | 'delete' | 'list' | 'sudo' | 'deny'
/** A policy as its HCL reads: path pattern (with a trailing `*` or `+` segments) to capabilities. */
export type PolicyRules = Record<string, Capability[]>
export type Operation = 'read' | 'list' | 'update' | 'create' | 'delete'

/** The paths of Vault's built-in `default` policy that this fake serves (vault/policy_store.go). */
export function defaultPolicy(): PolicyRules {
  return {
    'auth/token/lookup-self': ['read'],
    'auth/token/renew-self': ['update'],
    'auth/token/revoke-self': ['update'],
    'sys/capabilities-self': ['update'],
    'sys/renew': ['update'],
    'sys/leases/renew': ['update'],
    'sys/leases/lookup': ['update'],
  }
}

/**
 * Everything Landlord asks of Vault, and no more: connections, roles and
 * credentials under the database mount, keys under transit, and revoking its
 * credentials by lease or by prefix (revoke-prefix is root-protected: sudo).
 * Encrypt has `update` only, so encrypting with a missing key is refused
 * instead of creating one (transit's existence check turns it into `create`).
 */
export function landlordPolicy(mounts: { database?: string; transit?: string } = {}): PolicyRules {
  const db = mounts.database ?? 'database'
  const transit = mounts.transit ?? 'transit'
  const manage: Capability[] = ['create', 'read', 'update', 'delete', 'list']
  return {
    [`${db}/config/*`]: manage,
    [`${db}/roles/*`]: manage,
    [`${db}/creds/*`]: ['read'],
    [`${transit}/keys/*`]: manage,
    [`${transit}/encrypt/*`]: ['update'],
    [`${transit}/decrypt/*`]: ['update'],
    'sys/leases/revoke': ['update'],
    'sys/revoke': ['update'],
    [`sys/leases/revoke-prefix/${db}/creds/*`]: ['update', 'sudo'],
    [`sys/revoke-prefix/${db}/creds/*`]: ['update', 'sudo'],
  }
}

/** Rules merged as the HCL would be with `override` last; a pattern mapped to [] is dropped. */
export function mergeRules(base: PolicyRules, override: PolicyRules): PolicyRules {
  const merged = { ...base, ...override }
  return Object.fromEntries(Object.entries(merged).filter(([, caps]) => caps.length > 0))
}

/** Several policies' rules merged as vault/acl.go NewACL does: same pattern, capabilities unioned. */
export interface Acl {
  root: boolean
  rules: Map<string, Set<Capability>>
}

export function buildAcl(policies: string[], store: ReadonlyMap<string, PolicyRules>): Acl {
  const rules = new Map<string, Set<Capability>>()
  for (const name of policies) {
    for (const [pattern, caps] of Object.entries(store.get(name) ?? {})) {
      const set = rules.get(pattern) ?? new Set<Capability>()
      caps.forEach((c) => set.add(c))
      rules.set(pattern, set)
    }
  }
  return { root: policies.includes('root'), rules }
}

function patternMatches(pattern: string, path: string): boolean {
  const glob = pattern.endsWith('*')
  const body = glob ? pattern.slice(0, -1) : pattern
  const source = body
    .split('/')
    .map((segment) => (segment === '+' ? '[^/]*' : segment.replace(/[.+?^${}()|[\]\\*]/g, '\\$&')))
    .join('/')
  return new RegExp(`^${source}${glob ? '.*' : ''}$`, 's').test(path)
}

/**
 * The priority rules of website/content/docs/concepts/policies.mdx ("Priority
 * matching"): a later first wildcard wins, then no trailing glob, then fewer
 * `+` segments, then the longer pattern, then the lexicographically larger.
 */
function higherPriority(a: string, b: string): boolean {
  const firstWildcard = (p: string) => {
    const i = [p.indexOf('+'), p.indexOf('*')].filter((x) => x >= 0)
    return i.length === 0 ? Number.POSITIVE_INFINITY : Math.min(...i)
  }
  if (firstWildcard(a) !== firstWildcard(b)) return firstWildcard(a) > firstWildcard(b)
  if (a.endsWith('*') !== b.endsWith('*')) return !a.endsWith('*')
  const plus = (p: string) => p.split('/').filter((s) => s === '+').length
  if (plus(a) !== plus(b)) return plus(a) < plus(b)
  if (a.length !== b.length) return a.length > b.length
  return a > b
}

function bestRule(acl: Acl, path: string): Set<Capability> | undefined {
  let best: string | undefined
  for (const pattern of acl.rules.keys()) {
    if (patternMatches(pattern, path) && (best === undefined || higherPriority(pattern, best))) best = pattern
  }
  return best === undefined ? undefined : acl.rules.get(best)
}

/** What sys/capabilities-self lists for one path: sorted, ["root"], or ["deny"]. */
export function capabilitiesOf(acl: Acl, path: string): string[] {
  if (acl.root) return ['root']
  const caps = bestRule(acl, path)
  if (!caps || caps.size === 0 || caps.has('deny')) return ['deny']
  return [...caps].sort()
}

/** ACL.AllowOperation: the operation's capability, plus sudo on a root-protected path. */
export function allows(acl: Acl, path: string, op: Operation, sudo: boolean): boolean {
  if (acl.root) return true
  const caps = bestRule(acl, path)
  if (!caps || caps.has('deny')) return false
  return caps.has(op) && (!sudo || caps.has('sudo'))
}

export interface TokenEntry {
  id: string
  accessor: string
  /** The namespace it was issued in ("" is the root namespace); valid there and below. */
  namespace: string
  policies: string[]
  path: string
  displayName: string
  meta: Record<string, string> | null
  entityId: string
  issueMs: number
  /** Undefined for the root token, which never expires. */
  expireMs?: number
  creationTtl: number
  lastRenewalMs?: number
  renewable: boolean
  /** The AppRole role's token_ttl and token_max_ttl, which a renewal is held to. */
  roleTtl: number
  roleMaxTtl: number
}

export interface AppRole {
  roleName: string
  roleId: string
  secretId: string
  /** token_ttl in seconds; 0 takes the mount default (768h). */
  tokenTtl: number
  /** token_max_ttl in seconds; 0 takes the mount max (768h). */
  tokenMaxTtl: number
  policies: string[]
}

export class TokenStore {
  private readonly tokens = new Map<string, TokenEntry>()

  constructor(
    private readonly sys: SystemTtl,
    private readonly now: () => number,
  ) {}

  createRoot(): TokenEntry {
    const te: TokenEntry = {
      id: `hvs.${base62(24)}`,
      accessor: base62(24),
      namespace: '',
      policies: ['root'],
      path: 'auth/token/root',
      displayName: 'root',
      meta: null,
      entityId: '',
      issueMs: this.now(),
      creationTtl: 0,
      renewable: false,
      roleTtl: 0,
      roleMaxTtl: 0,
    }
    this.tokens.set(te.id, te)
    return te
  }

  /** auth/approle/login: pathLoginUpdate's checks, then a service token for the role. */
  login(role: AppRole, namespace: string, nsId: string, data: Record<string, unknown>): Outcome {
    const roleId = typeof data.role_id === 'string' ? data.role_id.trim() : ''
    if (roleId === '') return badRequest('missing role_id')
    if (roleId !== role.roleId) return badRequest('invalid role or secret ID')
    const secretId = typeof data.secret_id === 'string' ? data.secret_id.trim() : ''
    if (secretId === '') return badRequest('missing secret_id')
    if (secretId !== role.secretId) return badRequest('invalid role or secret ID')
    const now = this.now()
    const ttl = calculateTtl(this.sys, { increment: 0, backendTtl: role.tokenTtl, backendMaxTtl: role.tokenMaxTtl, nowMs: now })
    if ('error' in ttl) return internalError(ttl.error)
    const te: TokenEntry = {
      // Tokens issued in a namespace carry its id as a suffix, as leases do.
      id: `hvs.${base62(24)}${nsId ? `.${nsId}` : ''}`,
      accessor: `${base62(24)}${nsId ? `.${nsId}` : ''}`,
      namespace,
      policies: ['default', ...role.policies],
      path: 'auth/approle/login',
      // request_handling.go prefixes the mount ("approle-") to the backend's empty display name.
      displayName: 'approle',
      meta: { role_name: role.roleName },
      entityId: randomUUID(),
      issueMs: now,
      expireMs: now + ttl.ttl * 1000,
      creationTtl: ttl.ttl,
      renewable: true,
      roleTtl: role.tokenTtl,
      roleMaxTtl: role.tokenMaxTtl,
    }
    this.tokens.set(te.id, te)
    return respond({ auth: this.authBlock(te, ttl.ttl), warnings: ttl.warnings })
  }

  /** The token named by a request, if it is alive and usable in `namespace`. */
  resolve(id: string, namespace: string): TokenEntry | undefined {
    const te = this.tokens.get(id)
    if (!te) return undefined
    if (te.expireMs !== undefined && te.expireMs <= this.now()) return undefined
    const within = te.namespace === '' || namespace === te.namespace || namespace.startsWith(`${te.namespace}/`)
    return within ? te : undefined
  }

  /** auth/token/renew-self: expiration.go RenewToken, then CalculateTTL from the issue time. */
  renewSelf(te: TokenEntry, data: Record<string, unknown>): Outcome {
    const increment = parseDurationSecond(data.increment)
    if (increment === undefined) return badRequest(`error converting input ${String(data.increment)} for field "increment"`)
    // The root token has no lease to renew.
    if (te.expireMs === undefined) return badRequest('invalid lease ID')
    if (!te.renewable) return badRequest('lease is not renewable')
    const now = this.now()
    const ttl = calculateTtl(this.sys, { increment, backendTtl: te.roleTtl, backendMaxTtl: te.roleMaxTtl, startMs: te.issueMs, nowMs: now })
    // A plain error out of RenewToken: Vault answers 500, not a 4xx.
    if ('error' in ttl) return internalError(ttl.error)
    te.expireMs = now + ttl.ttl * 1000
    te.lastRenewalMs = now
    return respond({ auth: this.authBlock(te, ttl.ttl), warnings: ttl.warnings })
  }

  /** auth/token/lookup-self: token_store.go handleLookup's fields. */
  lookupSelf(te: TokenEntry): Outcome {
    const now = this.now()
    const data: Record<string, unknown> = {
      id: te.id,
      accessor: te.accessor,
      policies: te.policies,
      path: te.path,
      meta: te.meta,
      display_name: te.displayName,
      num_uses: 0,
      orphan: true,
      creation_time: Math.floor(te.issueMs / 1000),
      creation_ttl: te.creationTtl,
      expire_time: null,
      ttl: 0,
      explicit_max_ttl: 0,
      entity_id: te.entityId,
      type: 'service',
    }
    if (te.namespace !== '') data.namespace_path = `${te.namespace}/`
    if (te.expireMs !== undefined) {
      if (te.lastRenewalMs !== undefined) {
        data.last_renewal_time = Math.floor(te.lastRenewalMs / 1000)
        data.last_renewal = new Date(te.lastRenewalMs).toISOString()
      }
      data.expire_time = new Date(te.expireMs).toISOString()
      // leaseEntry.ttl(): against now rounded to the second.
      data.ttl = Math.trunc((te.expireMs - Math.round(now / 1000) * 1000) / 1000)
      data.renewable = te.renewable
      data.issue_time = new Date(te.issueMs).toISOString()
    }
    return respond({ data })
  }

  revoke(te: TokenEntry): void {
    this.tokens.delete(te.id)
  }

  /** Tokens whose lease ran out: removed, and handed back so their leases can be revoked. */
  takeExpired(): TokenEntry[] {
    const now = this.now()
    const expired = [...this.tokens.values()].filter((te) => te.expireMs !== undefined && te.expireMs <= now)
    expired.forEach((te) => this.tokens.delete(te.id))
    return expired
  }

  get size(): number {
    return this.tokens.size
  }

  private authBlock(te: TokenEntry, leaseDuration: number): Record<string, unknown> {
    return {
      client_token: te.id,
      accessor: te.accessor,
      policies: te.policies,
      token_policies: te.policies,
      metadata: te.meta,
      lease_duration: leaseDuration,
      renewable: te.renewable,
      entity_id: te.entityId,
      token_type: 'service',
      orphan: true,
      mfa_requirement: null,
      num_uses: 0,
    }
  }
}
