// The fake Vault's seal and the endpoints http/handler.go serves before any
// logical routing, which answer while sealed: sys/health (http/sys_health.go),
// sys/seal-status, sys/seal and sys/unseal (http/sys_seal.go).
import { randomBytes, randomUUID } from 'node:crypto'
import type { Reply } from './fake-vault-route.js'
import { PERMISSION_DENIED, SEALED } from './fake-vault-util.js'

export const VERSION = '1.17.0'
const methodNotAllowed: Reply = { status: 405, body: { errors: [] } }

export class SealState {
  sealed = false
  /** The one unseal key of a 1-of-1 Shamir seal (base64). */
  readonly unsealKey = randomBytes(32).toString('base64')
  private readonly clusterId = randomUUID()

  constructor(
    private readonly rootTokenId: string,
    private readonly now: () => number,
  ) {}

  /** The raw handler for `rel`, or undefined when the path is a logical one. */
  handle(method: string, rel: string, url: URL, data: Record<string, unknown>, tokenId: string): Reply | undefined {
    switch (rel) {
      case 'sys/health':
        if (method === 'HEAD') return { status: this.health(url).status }
        return method === 'GET' ? this.health(url) : methodNotAllowed
      case 'sys/seal-status':
        return method === 'GET' ? this.status() : methodNotAllowed
      case 'sys/seal':
        if (method !== 'PUT' && method !== 'POST') return methodNotAllowed
        if (this.sealed) return { status: 503, body: { errors: [SEALED] } }
        // Sealing takes a token with sudo on sys/seal: here, the root token.
        if (tokenId !== this.rootTokenId) return { status: 403, body: { errors: [PERMISSION_DENIED] } }
        this.sealed = true
        return { status: 204 }
      case 'sys/unseal':
        if (method !== 'PUT' && method !== 'POST') return methodNotAllowed
        if (data.reset !== true && !data.key) {
          return { status: 400, body: { errors: ["'key' must be specified in request body as JSON, or 'reset' set to true"] } }
        }
        if (data.reset !== true && data.key !== this.unsealKey) return { status: 400, body: { errors: ['cipher: message authentication failed'] } }
        if (data.key === this.unsealKey) this.sealed = false
        return this.status()
    }
    return undefined
  }

  /** 200 when active, 503 when sealed, or the codes the query asks for (sealedcode, activecode). */
  private health(url: URL): Reply {
    const code = (field: string, fallback: number) => (url.searchParams.has(field) ? Number(url.searchParams.get(field)) : fallback)
    const status = this.sealed ? code('sealedcode', 503) : code('activecode', 200)
    if (!Number.isInteger(status)) return { status: 400, body: { errors: [] } }
    const body: Record<string, unknown> = {
      initialized: true,
      sealed: this.sealed,
      // A sealed node reports itself as a standby.
      standby: this.sealed,
      performance_standby: false,
      replication_performance_mode: 'disabled',
      replication_dr_mode: 'disabled',
      server_time_utc: Math.floor(this.now() / 1000),
      version: VERSION,
      enterprise: false,
      echo_duration_ms: 0,
      clock_skew_ms: 0,
    }
    if (!this.sealed) Object.assign(body, { cluster_name: 'vault-cluster-fake', cluster_id: this.clusterId })
    return { status, body }
  }

  private status(): Reply {
    const body: Record<string, unknown> = {
      type: 'shamir',
      initialized: true,
      sealed: this.sealed,
      t: 1,
      n: 1,
      progress: 0,
      nonce: '',
      version: VERSION,
      build_date: '2024-06-10T10:11:34Z',
      migration: false,
      recovery_seal: false,
      storage_type: 'inmem',
    }
    if (!this.sealed) Object.assign(body, { cluster_name: 'vault-cluster-fake', cluster_id: this.clusterId })
    return { status: 200, body }
  }
}
