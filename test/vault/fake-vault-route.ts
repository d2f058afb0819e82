// How an engine of the fake Vault declares its paths (framework.Path's pattern,
// fields, existence check and callbacks, reduced to what the fake needs), and
// how its answer becomes Vault's HTTP reply (http/logical.go respondLogical,
// sdk/logical/response_util.go RespondErrorCommon).
import { randomUUID } from 'node:crypto'
import type { Operation, TokenEntry } from './fake-vault-auth.js'
import type { Outcome } from './fake-vault-util.js'

export interface Reply {
  status: number
  /** JSON body; none for 202 and 204. */
  body?: unknown
}

export interface VaultRequest {
  op: Operation
  /** The path relative to the namespace, without /v1/: "database/roles/app". */
  path: string
  /** "" for the root namespace. */
  namespace: string
  /** The namespace's id, suffixed to lease and token ids ("" for root). */
  nsId: string
  /** The JSON body of a write, or the query of a read. */
  data: Record<string, unknown>
  /** Named groups of the route's pattern. */
  params: Record<string, string>
  /** The calling token (a placeholder on unauthenticated paths). */
  token: TokenEntry
}

export interface Route {
  /** Anchored pattern on the namespace-relative path; named groups become params. */
  pattern: RegExp
  /** The response envelope's `mount_type`. */
  mountType: string
  /** framework.Path ExistenceCheck: a write to something missing is a `create`, else an `update`. */
  exists?: (req: VaultRequest) => boolean
  /** Root-protected paths need `sudo` as well (PathsSpecial.Root). */
  rootProtected?: boolean
  /** Login paths need no token (PathsSpecial.Unauthenticated). */
  unauthenticated?: boolean
  /** The fields the path declares; others earn Vault's "unrecognized parameters" warning. */
  fields?: string[]
  /** One of handler.go's injectDataIntoTopRoutes: data keys repeated at the top level. */
  injectData?: boolean
  handlers: Partial<Record<Operation, (req: VaultRequest) => Outcome | Promise<Outcome>>>
}

/** The envelope around a response, 204 for nothing, 404 `{"errors":[]}` for a missing read. */
export function toReply(outcome: Outcome, req: VaultRequest, route: Route): Reply {
  if (outcome.type === 'error') return { status: outcome.status, body: { errors: outcome.errors } }
  if (outcome.type === 'nil') return req.op === 'read' || req.op === 'list' ? { status: 404, body: { errors: [] } } : { status: 204 }
  // logical.RespondWithStatusCode(nil, ...): a bare status, no body.
  if (outcome.status === 202) return { status: 202 }
  const resp = outcome.resp
  const warnings = [...(resp.warnings ?? [])]
  const ignored = route.fields ? Object.keys(req.data).filter((k) => !route.fields?.includes(k)).sort() : []
  if (ignored.length > 0) warnings.push(`Endpoint ignored these unrecognized parameters: [${ignored.join(' ')}]`)
  const envelope = {
    request_id: randomUUID(),
    lease_id: resp.secret?.leaseId ?? '',
    renewable: resp.secret?.renewable ?? false,
    lease_duration: resp.secret?.leaseDuration ?? 0,
    data: resp.data ?? null,
    wrap_info: null,
    warnings: warnings.length > 0 ? warnings : null,
    auth: resp.auth ?? null,
    mount_type: route.mountType,
  }
  // Some sys routes (capabilities-self among them) also have their data injected at the top level.
  return { status: outcome.status ?? 200, body: route.injectData ? { ...resp.data, ...envelope } : envelope }
}
