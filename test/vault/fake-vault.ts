// A fake HashiCorp Vault for tests: a real HTTP listener on 127.0.0.1 that
// answers the endpoints Landlord uses with Vault's request shapes, status codes
// and bodies (http/handler.go, http/logical.go, sdk/logical/response_util.go),
// runs the database engine's statements against the real Postgres, and keeps
// every namespace (X-Vault-Namespace) apart. No Vault binary is needed.
import { randomUUID } from 'node:crypto'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import {
  TokenStore,
  allows,
  buildAcl,
  capabilitiesOf,
  defaultPolicy,
  landlordPolicy,
  mergeRules,
  type AppRole,
  type Capability,
  type Operation,
  type PolicyRules,
  type TokenEntry,
} from './fake-vault-auth.js'
import { DatabaseEngine, type DbRole } from './fake-vault-db.js'
import { LeaseManager, type Revocation } from './fake-vault-leases.js'
import { toReply, type Reply, type Route, type VaultRequest } from './fake-vault-route.js'
import { SealState } from './fake-vault-sys.js'
import { TransitEngine } from './fake-vault-transit.js'
import {
  INVALID_TOKEN,
  PERMISSION_DENIED,
  SEALED,
  UNSUPPORTED_OPERATION,
  UNSUPPORTED_PATH,
  badRequest,
  base62,
  nil,
  respond,
  type Outcome,
} from './fake-vault-util.js'

export { landlordPolicy, defaultPolicy, type Capability, type PolicyRules }

export interface FakeVaultOptions {
  /** Where the database secrets engine is mounted (default "database"). */
  databaseMount?: string
  /** Where the transit engine is mounted (default "transit"). */
  transitMount?: string
  approle?: {
    roleName?: string
    roleId?: string
    secretId?: string
    /** token_ttl in seconds (default 0: the mount default). */
    tokenTtl?: number
    /** token_max_ttl in seconds (default 0: the mount max). */
    tokenMaxTtl?: number
  }
  /**
   * Changes to the AppRole's policy, merged over landlordPolicy() for the
   * mounts above: `{ 'transit/keys/*': ['read'] }` takes a capability away,
   * a pattern mapped to [] drops the rule.
   */
  approleCapabilities?: PolicyRules
  /** The mounts' default and max lease TTL in seconds (Vault's: 768h each). */
  defaultLeaseTtl?: number
  maxLeaseTtl?: number
  /** How often expired leases and tokens are looked for (default 100 ms). */
  sweepIntervalMs?: number
}

export interface RequestRecord {
  method: string
  /** The URL path without its query; tokens never appear. */
  path: string
  namespace: string
  status: number
  at: Date
}

export interface LeaseView {
  leaseId: string
  namespace: string
  username: string
  role: string
  issueTime: Date
  expireTime: Date
  state: 'live' | 'revoking' | 'irrevocable'
  revokeAttempts: number
  lastError?: string
}

export interface ConnectionView {
  pluginName: string
  allowedRoles: string[]
  /** connection_url, username, username_template...; never the password. */
  details: Record<string, unknown>
}

export interface KeyView {
  type: string
  latestVersion: number
  deletionAllowed: boolean
  exportable: boolean
  allowPlaintextBackup: boolean
}

/** What one namespace holds, as fresh snapshots keyed by name (leases by lease id). */
export interface NamespaceView {
  /** Every lease Vault still tracks: live, being revoked (after a revoke without sync) or irrevocable. */
  readonly leases: ReadonlyMap<string, LeaseView>
  readonly roles: ReadonlyMap<string, DbRole>
  readonly connections: ReadonlyMap<string, ConnectionView>
  readonly keys: ReadonlyMap<string, KeyView>
}

/** The root namespace's view, the run's counters, and any namespace's view by name. */
export interface FakeVaultState extends NamespaceView {
  namespace(name: string): NamespaceView
  readonly requests: readonly RequestRecord[]
  readonly sealed: boolean
  /** SQL statements the database engine sent to Postgres (creation, renewal, revocation). */
  readonly statementsRun: number
  /** Every login the database engine created, revoked or not: what a test must clean up. */
  readonly usernames: readonly string[]
  readonly revocations: readonly Revocation[]
  /** Live tokens, the root token included. */
  readonly tokens: number
}

export interface FakeVault {
  url: string
  rootToken: string
  approle: { roleId: string; secretId: string }
  /** The key PUT sys/unseal accepts (base64). */
  unsealKey: string
  seal(): void
  unseal(): void
  /** The next `times` requests (default 1), whatever they are, answer `status`. */
  failNext(status: number, times?: number): void
  /** Replaces the AppRole's policy; live tokens see the change at once, as in Vault. */
  setApprolePolicy(rules: PolicyRules): void
  /** Runs the expiration sweep now (expired tokens, due revocations) and waits for it. */
  sweep(): Promise<void>
  close(): Promise<void>
  state: FakeVaultState
}

const DAY = 86400

export async function startFakeVault(opts: FakeVaultOptions = {}): Promise<FakeVault> {
  const now = () => Date.now()
  const sys = { defaultTtl: opts.defaultLeaseTtl ?? 32 * DAY, maxTtl: opts.maxLeaseTtl ?? 32 * DAY }
  const dbMount = opts.databaseMount ?? 'database'
  const transitMount = opts.transitMount ?? 'transit'
  const role: AppRole = {
    roleName: opts.approle?.roleName ?? 'landlord',
    roleId: opts.approle?.roleId ?? randomUUID(),
    secretId: opts.approle?.secretId ?? randomUUID(),
    tokenTtl: opts.approle?.tokenTtl ?? 0,
    tokenMaxTtl: opts.approle?.tokenMaxTtl ?? 0,
    policies: ['landlord'],
  }
  const policies = new Map<string, PolicyRules>([
    ['default', defaultPolicy()],
    ['landlord', mergeRules(landlordPolicy({ database: dbMount, transit: transitMount }), opts.approleCapabilities ?? {})],
  ])
  const tokens = new TokenStore(sys, now)
  const root = tokens.createRoot()
  // The lease manager calls back into the engine that issued each lease.
  const engines: { db?: DatabaseEngine } = {}
  const leases = new LeaseManager(sys, now, () => engines.db!)
  const db = (engines.db = new DatabaseEngine(dbMount, sys, now, leases))
  // A lazy revocation expires the lease now; Vault's timer for it fires at once.
  leases.onLazyRevoke = () => setImmediate(() => void sweep())
  const transit = new TransitEngine(transitMount, now)
  const nsIds = new Map<string, string>([['', '']])
  const nsId = (ns: string) => nsIds.get(ns) ?? (nsIds.set(ns, base62(5)), nsIds.get(ns)!)
  const requests: RequestRecord[] = []
  const seal = new SealState(root.id, now)
  const fault = { status: 0, remaining: 0 }

  const routes: Route[] = [
    ...db.routes(),
    ...transit.routes(),
    ...leases.routes(),
    {
      pattern: /^sys\/capabilities-self$/,
      mountType: 'system',
      fields: ['paths', 'path', 'token'],
      injectData: true,
      handlers: { update: (req) => capabilitiesSelf(req) },
    },
    { pattern: /^auth\/token\/lookup-self$/, mountType: 'token', handlers: { read: (req) => tokens.lookupSelf(req.token) } },
    { pattern: /^auth\/token\/renew-self$/, mountType: 'token', fields: ['increment'], handlers: { update: (req) => tokens.renewSelf(req.token, req.data) } },
    {
      pattern: /^auth\/token\/revoke-self$/,
      mountType: 'token',
      handlers: { update: (req) => (tokens.revoke(req.token), leases.revokeByToken(req.token.id), nil) },
    },
    {
      pattern: /^auth\/approle\/login$/,
      mountType: 'approle',
      unauthenticated: true,
      fields: ['role_id', 'secret_id'],
      handlers: { update: (req) => tokens.login(role, req.namespace, req.nsId, req.data) },
    },
  ]
  const mounts = [`${dbMount}/`, `${transitMount}/`, 'sys/', 'auth/token/', 'auth/approle/']

  /** The ACL of a token, and the path its policies see (a parent namespace's token sees "child/..."). */
  const aclFor = (te: TokenEntry, ns: string, path: string) => {
    const relativeNs = te.namespace === '' ? ns : ns.slice(te.namespace.length + 1)
    return { acl: buildAcl(te.policies, policies), path: relativeNs === '' ? path : `${relativeNs}/${path}` }
  }

  /** handleCapabilities: per path, plus `capabilities` alone when one path was asked. */
  function capabilitiesSelf(req: VaultRequest): Outcome {
    const raw = req.data.paths ?? req.data.path
    const paths = typeof raw === 'string' ? raw.split(',').map((p) => p.trim()).filter((p) => p !== '') : Array.isArray(raw) ? raw.map(String) : []
    if (paths.length === 0) return badRequest('paths must be supplied')
    const data: Record<string, unknown> = {}
    for (const p of paths) {
      const { acl, path } = aclFor(req.token, req.namespace, p)
      data[p] = capabilitiesOf(acl, path)
    }
    if (paths.length === 1) data.capabilities = data[paths[0]!]
    return respond({ data })
  }

  async function dispatch(req: IncomingMessage, url: URL, body: string, namespace: string): Promise<Reply> {
    const method = req.method ?? 'GET'
    if (!url.pathname.startsWith('/v1/')) return { status: 404, body: { errors: [] } }
    let rel = url.pathname.slice('/v1/'.length)
    let data: Record<string, unknown> = {}
    if (method === 'POST' || method === 'PUT') {
      try {
        const parsed: unknown = body.trim() === '' ? {} : JSON.parse(body)
        if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not an object')
        data = parsed as Record<string, unknown>
      } catch {
        return { status: 400, body: { errors: ['error parsing JSON'] } }
      }
    } else {
      for (const [k, v] of url.searchParams) if (k !== 'list') data[k] = v
    }
    const tokenHeader = req.headers['x-vault-token']
    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1]
    const tokenId = (Array.isArray(tokenHeader) ? tokenHeader[0] : tokenHeader) ?? bearer?.trim() ?? ''
    const raw = seal.handle(method, rel, url, data, tokenId)
    if (raw) return raw
    if (seal.sealed) return { status: 503, body: { errors: [SEALED] } }

    let op: Operation
    if (method === 'GET') op = url.searchParams.get('list') === 'true' ? 'list' : 'read'
    else if (method === 'LIST') op = 'list'
    else if (method === 'POST' || method === 'PUT') op = 'update'
    else if (method === 'DELETE') op = 'delete'
    else return { status: 405, body: { errors: [] } }
    if (op === 'list' && !rel.endsWith('/')) rel += '/'

    const route = routes.find((r) => r.pattern.test(rel))
    const params = route ? ({ ...route.pattern.exec(rel)?.groups } as Record<string, string>) : {}
    let token = root
    if (!route?.unauthenticated) {
      if (tokenId === '') return { status: 403, body: { errors: [PERMISSION_DENIED] } }
      const te = tokens.resolve(tokenId, namespace)
      if (!te) return { status: 403, body: { errors: [INVALID_TOKEN] } }
      token = te
    }
    const vreq: VaultRequest = { op, path: rel, namespace, nsId: nsId(namespace), data, params, token }
    if (route?.exists && op === 'update' && !route.exists(vreq)) vreq.op = 'create'
    if (!route?.unauthenticated) {
      const { acl, path } = aclFor(token, namespace, rel)
      if (!allows(acl, path, vreq.op, route?.rootProtected === true)) return { status: 403, body: { errors: [PERMISSION_DENIED] } }
    }
    if (!route) {
      if (mounts.some((m) => rel.startsWith(m))) return { status: 404, body: { errors: [UNSUPPORTED_PATH] } }
      return { status: 404, body: { errors: [`no handler for route "${rel}". route entry not found.`] } }
    }
    const handler = route.handlers[vreq.op]
    if (!handler) return { status: 405, body: { errors: [UNSUPPORTED_OPERATION] } }
    const outcome = await handler(vreq)
    return toReply(outcome, vreq, route)
  }

  let sweeping: Promise<void> | undefined
  let closed = false
  const sweep = (): Promise<void> => {
    if (closed) return Promise.resolve()
    sweeping ??= (async () => {
      for (const te of tokens.takeExpired()) leases.revokeByToken(te.id)
      await leases.sweep()
    })().finally(() => (sweeping = undefined))
    return sweeping
  }
  const timer = setInterval(() => void sweep(), opts.sweepIntervalMs ?? 100)
  timer.unref()

  const server = createServer((req, res) => void serve(req, res))
  async function serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = []
    for await (const chunk of req) chunks.push(chunk as Buffer)
    const url = new URL(req.url ?? '/', 'http://fake-vault')
    const nsHeader = req.headers['x-vault-namespace']
    const namespace = ((Array.isArray(nsHeader) ? nsHeader[0] : nsHeader) ?? '').replace(/^\/+|\/+$/g, '')
    const record: RequestRecord = { method: req.method ?? '', path: url.pathname, namespace, status: 0, at: new Date() }
    requests.push(record)
    let reply: Reply
    if (fault.remaining > 0) {
      fault.remaining -= 1
      reply = { status: fault.status, body: { errors: [`fake vault: injected failure (${fault.status})`] } }
    } else {
      try {
        reply = await dispatch(req, url, Buffer.concat(chunks).toString('utf8'), namespace)
      } catch (err) {
        reply = { status: 500, body: { errors: [`1 error occurred:\n\t* ${(err as Error).message}\n\n`] } }
      }
    }
    record.status = reply.status
    res.setHeader('Cache-Control', 'no-store')
    if (reply.body === undefined) {
      res.writeHead(reply.status).end()
      return
    }
    res.writeHead(reply.status, { 'Content-Type': 'application/json' }).end(`${JSON.stringify(reply.body)}\n`)
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo

  const view = (ns: string): NamespaceView => ({
    get leases() {
      return new Map(
        leases.list(ns).map((l) => [
          l.id,
          { leaseId: l.id, namespace: l.namespace, username: l.internal.username, role: l.internal.role, issueTime: new Date(l.issueMs), expireTime: new Date(l.expireMs), state: l.state, revokeAttempts: l.revokeAttempts, lastError: l.lastError },
        ]),
      )
    },
    get roles() {
      return new Map([...db.space(ns).roles].map(([k, r]) => [k, { ...r }]))
    },
    get connections() {
      return new Map(
        [...db.space(ns).configs].map(([k, c]) => {
          const { password: _password, ...details } = c.details
          return [k, { pluginName: c.pluginName, allowedRoles: [...c.allowedRoles], details }]
        }),
      )
    },
    get keys() {
      return new Map([...transit.keys(ns)].map(([k, v]) => [k, { type: v.type, latestVersion: v.latestVersion, deletionAllowed: v.deletionAllowed, exportable: v.exportable, allowPlaintextBackup: v.allowPlaintextBackup }]))
    },
  })
  const rootView = view('')
  const state: FakeVaultState = {
    get leases() {
      return rootView.leases
    },
    get roles() {
      return rootView.roles
    },
    get connections() {
      return rootView.connections
    },
    get keys() {
      return rootView.keys
    },
    namespace: (name) => view(name.replace(/^\/+|\/+$/g, '')),
    requests,
    get sealed() {
      return seal.sealed
    },
    get statementsRun() {
      return db.counter.statementsRun
    },
    usernames: db.usernames,
    revocations: leases.revocations,
    get tokens() {
      return tokens.size
    },
  }

  return {
    url: `http://127.0.0.1:${port}`,
    rootToken: root.id,
    approle: { roleId: role.roleId, secretId: role.secretId },
    unsealKey: seal.unsealKey,
    seal: () => void (seal.sealed = true),
    unseal: () => void (seal.sealed = false),
    failNext: (status, times = 1) => Object.assign(fault, { status, remaining: times }),
    setApprolePolicy: (rules) => void policies.set('landlord', rules),
    sweep,
    state,
    async close() {
      closed = true
      clearInterval(timer)
      await new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      })
      await sweeping
      await db.close()
    },
  }
}
