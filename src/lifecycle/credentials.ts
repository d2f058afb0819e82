// Login credentials for a tenant's database. A hibernated tenant is woken
// first and the answer waits (bounded) until it accepts connections; a
// tenant in a `locked` state (suspended, decommissioned, ...) gets 423.
import type { Config } from '../config.js'
import type { Db } from '../db/index.js'
import type { Tenant } from '../db/schema.js'
import { findTenant, getTenant, touchLastActive } from '../db/tenants.js'
import { tenantLocked, tenantNotReady, wakeTimedOut } from '../errors.js'
import { pollUntil } from '../poll.js'
import { LeaseRevokedError, type IssuedCredentials, type SecretsBackend } from '../secrets/backend.js'
import { hasTag } from './states.js'
import { applyEvent } from './transition.js'

export interface ConnectionInfo {
  host: string
  port: number
  database: string
}

export interface Credentials extends IssuedCredentials, ConnectionInfo {}

export function connectionInfo(config: Config, tenant: Tenant): ConnectionInfo {
  const url = new URL(config.tenantClusterUrl)
  return { host: url.hostname, port: Number(url.port || 5432), database: tenant.database_name }
}

/** Waits until the tenant is active, waking it if hibernated; throws what a caller should hear otherwise. */
async function untilActive(db: Db, ref: string, actor: string, timeoutMs: number): Promise<Tenant> {
  const active = await pollUntil(
    async () => {
      const tenant = await getTenant(db, ref)
      if (tenant.state === 'active') return tenant
      if (hasTag(tenant.state, 'locked')) throw tenantLocked(tenant.state)
      if (tenant.state === 'hibernated') {
        // Someone else may wake it first: then this does nothing, and the wait goes on.
        await applyEvent(db, tenant.id, { type: 'WAKE' }, { actor, expectState: 'hibernated', data: { reason: 'credentials requested' } })
      } else if (!hasTag(tenant.state, 'settling')) {
        throw tenantNotReady(tenant.state)
      }
      return undefined
    },
    { timeoutMs, intervalMs: 50 },
  )
  if (!active) throw wakeTimedOut(Math.round(timeoutMs / 1000))
  return active
}

export async function issueCredentials(
  deps: { db: Db; secrets: SecretsBackend; config: Config },
  ref: string,
  principal: string,
  idempotencyKey?: string,
  rounds = 2,
): Promise<Credentials> {
  const { db, secrets, config } = deps
  const tenant = await untilActive(db, ref, principal, config.wakeTimeoutMs)
  let issued: IssuedCredentials
  try {
    issued = await secrets.issue(tenant, { principal, ttlMs: config.credentialTtlMs, idempotencyKey })
  } catch (err) {
    // Revoked while issued: a fence or rotation ran at the same moment. Say what the tenant is now.
    if (!(err instanceof LeaseRevokedError)) throw err
    const now = await findTenant(db, tenant.id)
    throw now?.state === 'active' ? err : tenantLocked(now?.state ?? 'wiped')
  }
  // Kept awake: a tenant someone just asked credentials for is not idle.
  await touchLastActive(db, tenant.id)
  // A suspension that raced this request may have revoked before the lease existed: check again.
  const after = await findTenant(db, tenant.id)
  if (after?.state !== 'active') {
    await secrets.revokeAll(tenant)
    // Hibernated by the idle sweep at this very moment: wake it again, once.
    if (rounds > 1 && after && (after.state === 'hibernating' || after.state === 'hibernated')) {
      return issueCredentials(deps, ref, principal, idempotencyKey, rounds - 1)
    }
    throw tenantLocked(after?.state ?? 'wiped')
  }
  return { ...issued, ...connectionInfo(config, tenant) }
}
