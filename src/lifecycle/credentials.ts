// Login credentials for a tenant's database. A hibernated tenant is woken
// first and the answer waits (bounded) until it accepts connections; a
// suspended or decommissioned one is locked (423).
import type { Config } from '../config.js'
import type { Db } from '../db/index.js'
import type { Tenant } from '../db/schema.js'
import { findTenant, getTenant } from '../db/tenants.js'
import { LandlordError, tenantLocked, tenantNotReady, wakeTimedOut } from '../errors.js'
import { sql } from 'kysely'
import { LeaseRevokedError, type IssuedCredentials, type SecretsBackend } from '../secrets/backend.js'
import { applyEvent } from './transition.js'

export interface ConnectionInfo {
  host: string
  port: number
  database: string
}

export interface Credentials extends IssuedCredentials, ConnectionInfo {}

const LOCKED = new Set(['suspending', 'suspended', 'decommissioning', 'decommissioned', 'wiping', 'wiped'])
/** On their way to active (or to hibernated, which is then woken): wait. */
const SETTLING = new Set(['waking', 'resuming', 'restoring', 'hibernating'])

export function connectionInfo(config: Config, tenant: Tenant): ConnectionInfo {
  const url = new URL(config.tenantClusterUrl)
  return { host: url.hostname, port: Number(url.port || 5432), database: tenant.database_name }
}

async function untilActive(db: Db, ref: string, actor: string, timeoutMs: number): Promise<Tenant> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const tenant = await getTenant(db, ref)
    if (tenant.state === 'active') return tenant
    if (LOCKED.has(tenant.state)) throw tenantLocked(tenant.state)
    if (tenant.state === 'hibernated') {
      await applyEvent(db, tenant.id, { type: 'WAKE' }, { actor, expectState: 'hibernated', data: { reason: 'credentials requested' } }).catch(
        (err: unknown) => {
          // Someone else woke it meanwhile: keep waiting.
          if (!(err instanceof LandlordError && err.status === 409)) throw err
        },
      )
    } else if (!SETTLING.has(tenant.state)) {
      throw tenantNotReady(tenant.state)
    }
    if (Date.now() > deadline) throw wakeTimedOut(Math.round(timeoutMs / 1000))
    await new Promise((r) => setTimeout(r, 50))
  }
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
  const issued = await secrets.issue(tenant, { principal, ttlMs: config.credentialTtlMs, idempotencyKey }).catch(async (err: unknown) => {
    // Revoked while issued: a fence or rotation ran at the same moment. Say what the tenant is now.
    if (!(err instanceof LeaseRevokedError)) throw err
    const now = await findTenant(db, tenant.id)
    throw now?.state === 'active' ? err : tenantLocked(now?.state ?? 'wiped')
  })
  // Kept awake: a tenant someone just asked credentials for is not idle.
  await db.updateTable('tenants').set({ last_active_at: sql<Date>`now()` }).where('id', '=', tenant.id).execute()
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
