// One authenticated Vault client, through node-vault: a token, or an AppRole
// login, renewed before it expires (logging in again when renewal is refused).
// Every failure leaves here as a VaultError holding a status and Vault's own
// message, never the request (whose headers carry the token).
import vault from 'node-vault'
import type { VaultConfig } from '../config.js'
import type { Logger } from '../log.js'

export class VaultError extends Error {
  constructor(
    /** Vault's HTTP status, or undefined when Vault could not be reached. */
    readonly status: number | undefined,
    message: string,
  ) {
    super(message)
    this.name = 'VaultError'
  }

  /** Sealed, unreachable or failing: worth a retry later, not the caller's fault. */
  get unavailable(): boolean {
    return this.status === undefined || this.status >= 500
  }
}

/** Vault's answer envelope, as far as Landlord reads it. */
export interface VaultResponse<T = Record<string, unknown>> {
  lease_id?: string
  lease_duration?: number
  renewable?: boolean
  data?: T
  auth?: { client_token: string; lease_duration: number; renewable: boolean }
}

type Client = ReturnType<typeof vault>

function toVaultError(err: unknown): VaultError {
  const e = err as { response?: { statusCode?: number; body?: { errors?: string[] } }; code?: string; message?: string }
  const status = e.response?.statusCode
  if (status !== undefined) {
    const reason = e.response?.body?.errors?.filter((m) => m !== '').join('; ') || `HTTP ${status}`
    return new VaultError(status, `Vault answered ${status}: ${reason}`)
  }
  return new VaultError(undefined, `Vault is unreachable: ${e.code ?? 'request failed'}`)
}

export class VaultClient {
  private readonly client: Client
  private renewal: NodeJS.Timeout | undefined
  private closed = false

  constructor(
    private readonly config: VaultConfig,
    private readonly log: Logger,
  ) {
    this.client = vault({
      apiVersion: 'v1',
      endpoint: config.addr,
      namespace: config.namespace,
      token: 'token' in config.auth ? config.auth.token : undefined,
      requestOptions: { timeout: 10_000 },
    })
  }

  /** Logs in (AppRole) or checks the token, and keeps it renewed until close(). */
  async start(): Promise<void> {
    const ttl = 'roleId' in this.config.auth ? await this.login() : await this.lookupTtl()
    this.scheduleRenewal(ttl)
  }

  close(): void {
    this.closed = true
    clearTimeout(this.renewal)
  }

  async request<T = Record<string, unknown>>(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, json?: unknown): Promise<VaultResponse<T>> {
    try {
      return (await this.client.request({ method, path: `/${path}`, json })) as VaultResponse<T>
    } catch (err) {
      throw toVaultError(err)
    }
  }

  /** sys/health: Vault's own answer (sealed, standby) even when it is not 200. */
  async health(): Promise<{ initialized: boolean; sealed: boolean; standby: boolean }> {
    try {
      return (await this.client.health({ standbyok: true })) as { initialized: boolean; sealed: boolean; standby: boolean }
    } catch (err) {
      throw toVaultError(err)
    }
  }

  private async login(): Promise<number> {
    const auth = this.config.auth as { roleId: string; secretId: string }
    try {
      const res = (await this.client.approleLogin({ role_id: auth.roleId, secret_id: auth.secretId })) as VaultResponse
      // node-vault keeps the new token for later requests.
      return res.auth?.lease_duration ?? 0
    } catch (err) {
      throw toVaultError(err)
    }
  }

  private async lookupTtl(): Promise<number> {
    const res = await this.request<{ ttl: number }>('GET', 'auth/token/lookup-self')
    return res.data?.ttl ?? 0
  }

  /** Renews at two thirds of the TTL; a refused renewal with AppRole means a new login. A TTL of 0 never expires. */
  private scheduleRenewal(ttlSeconds: number): void {
    if (this.closed || ttlSeconds <= 0) return
    this.renewal = setTimeout(() => void this.renew(), Math.max(1, Math.floor((ttlSeconds * 2) / 3)) * 1000)
    this.renewal.unref()
  }

  private async renew(): Promise<void> {
    try {
      const res = await this.request('POST', 'auth/token/renew-self')
      this.scheduleRenewal(res.auth?.lease_duration ?? 0)
    } catch (err) {
      if (!('roleId' in this.config.auth)) {
        this.log.error({ err: (err as Error).message }, 'Vault token renewal failed; set a fresh VAULT_TOKEN')
        this.scheduleRenewal(30)
        return
      }
      try {
        this.scheduleRenewal(await this.login())
        this.log.info('Vault AppRole login renewed the token')
      } catch (loginErr) {
        this.log.error({ err: (loginErr as Error).message }, 'Vault AppRole login failed; retrying')
        this.scheduleRenewal(30)
      }
    }
  }
}
