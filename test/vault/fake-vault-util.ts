// Pieces of Vault's behaviour every engine of the fake shares: how a handler's
// answer becomes an HTTP status (sdk/logical/response_util.go), go-multierror's
// wording, Go durations and times, base62 randomness and the TTL arithmetic of
// sdk/framework/lease.go.
import { randomInt } from 'node:crypto'

/** A logical response before the HTTP envelope is put around it (logical.Response). */
export interface LogicalResponse {
  data?: Record<string, unknown> | null
  warnings?: string[]
  auth?: Record<string, unknown>
  secret?: { leaseId: string; leaseDuration: number; renewable: boolean }
}

/**
 * What a handler answers. `nil` is Go's `return nil, nil`: a read answers 404
 * with `{"errors":[]}`, anything else 204 (RespondErrorCommon, respondOk).
 */
export type Outcome =
  | { type: 'response'; resp: LogicalResponse; status?: number }
  | { type: 'nil' }
  | { type: 'error'; status: number; errors: string[] }

export const nil: Outcome = { type: 'nil' }
export const respond = (resp: LogicalResponse, status?: number): Outcome => ({ type: 'response', resp, status })
/** logical.ErrorResponse(msg), with or without ErrInvalidRequest: 400 and the message as written. */
export const badRequest = (msg: string): Outcome => ({ type: 'error', status: 400, errors: [msg] })
/** A plain Go error from a backend: 500, wrapped by request_handling.go's multierror. */
export const internalError = (msg: string): Outcome => ({ type: 'error', status: 500, errors: [multiError([msg])] })
export const errorOutcome = (status: number, errors: string[]): Outcome => ({ type: 'error', status, errors })

/** go-multierror's ListFormatFunc, which is how most of Vault's core errors read. */
export function multiError(msgs: string[]): string {
  const points = msgs.map((m) => `* ${m}`)
  if (points.length === 1) return `1 error occurred:\n\t${points[0]}\n\n`
  return `${points.length} errors occurred:\n\t${points.join('\n\t')}\n\n`
}

export const PERMISSION_DENIED = multiError(['permission denied'])
/** An unknown, expired or revoked token (website/content/docs/concepts/tokens.mdx, "Error Responses"). */
export const INVALID_TOKEN = multiError(['permission denied', 'invalid token'])
export const UNSUPPORTED_PATH = multiError(['unsupported path'])
export const UNSUPPORTED_OPERATION = multiError(['unsupported operation'])
export const SEALED = 'Vault is sealed'

const BASE62 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'
/** sdk/helper/base62.Random: lease ids, token ids, the `random` username template function. */
export function base62(length: number): string {
  let out = ''
  for (let i = 0; i < length; i++) out += BASE62[randomInt(BASE62.length)]
  return out
}

const LOWER = 'abcdefghijklmnopqrstuvwxyz'
const UPPER = LOWER.toUpperCase()
const DIGITS = '0123456789'
/**
 * The default password policy: 20 characters of [a-zA-Z0-9-] with at least one
 * of each class (sdk/helper/random/string_generator.go, DefaultStringGenerator).
 */
export function defaultPassword(): string {
  const charset = `${LOWER}${UPPER}${DIGITS}-`
  for (;;) {
    let s = ''
    for (let i = 0; i < 20; i++) s += charset[randomInt(charset.length)]
    if ([LOWER, UPPER, DIGITS, '-'].every((set) => [...s].some((c) => set.includes(c)))) return s
  }
}

/** framework.GenericNameRegex: the names a path segment may carry. */
export const NAME = String.raw`\w(?:(?:[\w\-.@]+)?\w)?`

/** Go's time.Duration.String() for whole seconds ("1h0m0s", "1m30s", "0s"). */
export function goDuration(seconds: number): string {
  if (seconds === 0) return '0s'
  const h = Math.floor(seconds / 3600)
  const m = Math.floor((seconds % 3600) / 60)
  const s = seconds % 60
  if (h > 0) return `${h}h${m}m${s}s`
  if (m > 0) return `${m}m${s}s`
  return `${s}s`
}

/** sdk/framework/lease.go humanDuration: the duration in CalculateTTL's warnings. */
export function humanDuration(seconds: number): string {
  let s = goDuration(seconds)
  if (s.endsWith('m0s')) s = s.slice(0, -2)
  const i = s.indexOf('h0m')
  if (i > 0) s = s.slice(0, i + 1) + s.slice(i + 3)
  return s
}

const UNIT_SECONDS: Record<string, number> = { ns: 1e-9, us: 1e-6, µs: 1e-6, ms: 1e-3, s: 1, m: 60, h: 3600, d: 86400 }
/**
 * parseutil.ParseDurationSecond: a number of seconds, a string of digits, or a
 * Go duration ("1h30m", with "d" for days). Undefined when it is none of these.
 */
export function parseDurationSecond(raw: unknown): number | undefined {
  if (raw === undefined || raw === null || raw === '') return 0
  if (typeof raw === 'number') return Number.isFinite(raw) ? Math.trunc(raw) : undefined
  if (typeof raw !== 'string') return undefined
  const text = raw.trim()
  if (/^-?\d+$/.test(text)) return Number(text)
  const parts = text.match(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h|d)/g)
  if (!parts || parts.join('') !== text) return undefined
  let total = 0
  for (const part of parts) {
    const [, value, unit] = /^(\d+(?:\.\d+)?)(\D+)$/.exec(part) ?? []
    total += Number(value) * (UNIT_SECONDS[unit ?? ''] ?? Number.NaN)
  }
  return Number.isFinite(total) ? Math.trunc(total) : undefined
}

/** The layout the Postgres plugin gives `{{expiration}}`: '2006-01-02 15:04:05-0700', local time. */
export function vaultExpiration(at: Date): string {
  const pad = (n: number, width = 2) => String(Math.abs(n)).padStart(width, '0')
  const offset = -at.getTimezoneOffset()
  const sign = offset >= 0 ? '+' : '-'
  const date = `${at.getFullYear()}-${pad(at.getMonth() + 1)}-${pad(at.getDate())}`
  const time = `${pad(at.getHours())}:${pad(at.getMinutes())}:${pad(at.getSeconds())}`
  return `${date} ${time}${sign}${pad(Math.trunc(offset / 60))}${pad(offset % 60)}`
}

/** The mount's TTLs: Vault's system default and max are both 768h (32 days). */
export interface SystemTtl {
  defaultTtl: number
  maxTtl: number
}

/**
 * framework.CalculateTTL, in whole seconds: the increment, else the backend's
 * TTL, else the mount default, capped by what is left of the max TTL counted
 * from `startMs`; past that max the renewal is refused.
 */
export function calculateTtl(
  sys: SystemTtl,
  opts: { increment: number; backendTtl: number; backendMaxTtl: number; startMs?: number; nowMs: number },
): { ttl: number; warnings: string[] } | { error: string } {
  // Truncated to the second: the lowest precision Vault keeps for a TTL.
  const now = Math.floor(opts.nowMs / 1000)
  const start = opts.startMs === undefined ? now : Math.floor(opts.startMs / 1000)
  let maxTtl = sys.maxTtl
  if (opts.backendMaxTtl > 0 && opts.backendMaxTtl < maxTtl) maxTtl = opts.backendMaxTtl
  if (maxTtl <= 0) return { error: 'max TTL must be greater than zero' }
  let ttl = opts.increment > 0 ? opts.increment : opts.backendTtl > 0 ? opts.backendTtl : sys.defaultTtl
  const maxValidTtl = start + maxTtl - now
  if (maxValidTtl <= 0) return { error: 'past the max TTL, cannot renew' }
  const warnings: string[] = []
  if (maxValidTtl - ttl < 0) {
    warnings.push(`TTL of "${humanDuration(ttl)}" exceeded the effective max_ttl of "${humanDuration(maxValidTtl)}"; TTL value is capped accordingly`)
    ttl = maxValidTtl
  }
  return { ttl, warnings }
}

/** ryanuber/go-glob, as strutil.StrListContainsGlob uses it for allowed_roles. */
export function globMatch(pattern: string, value: string): boolean {
  const escaped = pattern.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
  return new RegExp(`^${escaped.join('.*')}$`, 's').test(value)
}

/** mapstructure.WeakDecode into []string: a lone string becomes a one-element list. */
export function asStringSlice(raw: unknown): string[] | undefined {
  if (raw === '' || raw === null) return []
  if (typeof raw === 'string') return [raw.trim()]
  if (Array.isArray(raw) && raw.every((v) => typeof v === 'string')) return raw.map((v) => v.trim())
  return undefined
}

/** framework.TypeCommaStringSlice: a comma-separated string or a list. */
export function asCommaSlice(raw: unknown): string[] | undefined {
  if (typeof raw === 'string') return raw.split(',').map((v) => v.trim()).filter((v) => v !== '')
  return asStringSlice(raw)
}

/** framework.TypeBool through WeakDecode: booleans, "true"/"false", 0/1. */
export function asBool(raw: unknown): boolean | undefined {
  if (typeof raw === 'boolean') return raw
  if (raw === 'true' || raw === '1' || raw === 1) return true
  if (raw === 'false' || raw === '0' || raw === 0 || raw === '') return false
  return undefined
}

/** Go's base64.StdEncoding.DecodeString: strict, padded; the error names the first bad byte. */
export function decodeStdBase64(text: string): Buffer | { error: string } {
  const bad = [...text].findIndex((c) => !/[A-Za-z0-9+/=]/.test(c))
  if (bad >= 0) return { error: `illegal base64 data at input byte ${bad}` }
  if (text.length % 4 !== 0 || /=[^=]/.test(text)) return { error: `illegal base64 data at input byte ${Math.floor(text.length / 4) * 4}` }
  return Buffer.from(text, 'base64')
}

/** pq.QuoteIdentifier. */
export const quoteIdent = (name: string) => `"${name.replace(/"/g, '""')}"`
