// Operator requests that wrap a transition with its parameters (retention), or
// act on a tenant without moving its state (legal hold, credential rotation).
// The rules themselves (a hold refuses wipes, retention bounds RESTORE, zero
// retention wipes) are the statechart's guards. Each request is one transaction.
import type { Transaction } from 'kysely'
import type { Db } from '../db/index.js'
import { writeOutbox } from '../db/outbox.js'
import type { Database, Tenant } from '../db/schema.js'
import { getLockedTenant, updateTenant } from '../db/tenants.js'
import { holdNotAllowed, tenantGone } from '../errors.js'
import type { OperatorEvent } from './events.js'
import { hasTag } from './states.js'
import { appendHistory, applyEvent, jobRow, webhookRow } from './transition.js'

export async function requestEvent(db: Db, ref: string, event: OperatorEvent, actor: string): Promise<Tenant> {
  return (await applyEvent(db, ref, event, { actor }))!
}

/**
 * Decommissions a tenant, keeping its data for `retentionMs` (0 wipes now,
 * also for a tenant already decommissioned, whose `wipe_after` then stays).
 */
export async function decommission(db: Db, ref: string, retentionMs: number, actor: string): Promise<Tenant> {
  const tenant = await applyEvent(
    db,
    ref,
    { type: 'DECOMMISSION', retentionMs },
    {
      actor,
      extra: (_next, locked) => (locked.state === 'decommissioned' ? {} : { wipe_after: new Date(Date.now() + retentionMs) }),
      data: { retention_seconds: retentionMs / 1000 },
    },
  )
  return tenant!
}

/** Brings a decommissioned tenant back, as long as its retention has not run out. */
export async function restoreTenant(db: Db, ref: string, actor: string): Promise<Tenant> {
  return (await applyEvent(db, ref, { type: 'RESTORE' }, { actor, extra: () => ({ wipe_after: null }) }))!
}

async function withLockedTenant<T>(db: Db, ref: string, fn: (trx: Transaction<Database>, tenant: Tenant) => Promise<T>): Promise<T> {
  return db.transaction().execute(async (trx) => {
    return fn(trx, await getLockedTenant(trx, ref))
  })
}

export async function placeLegalHold(db: Db, ref: string, reason: string, actor: string): Promise<Tenant> {
  return withLockedTenant(db, ref, async (trx, tenant) => {
    if (hasTag(tenant.state, 'gone')) throw holdNotAllowed(tenant.state)
    const updated = await updateTenant(trx, tenant.id, { legal_hold_reason: reason, legal_hold_at: new Date(), legal_hold_by: actor })
    await appendHistory(trx, tenant, 'LEGAL_HOLD_PLACED', actor, { reason })
    return updated
  })
}

export async function releaseLegalHold(db: Db, ref: string, actor: string): Promise<Tenant> {
  return withLockedTenant(db, ref, async (trx, tenant) => {
    if (tenant.legal_hold_at === null) return tenant
    const updated = await updateTenant(trx, tenant.id, { legal_hold_reason: null, legal_hold_at: null, legal_hold_by: null })
    await appendHistory(trx, tenant, 'LEGAL_HOLD_RELEASED', actor, { reason: tenant.legal_hold_reason, placed_by: tenant.legal_hold_by })
    return updated
  })
}

/** Queues the revocation of every lease issued so far, and tells billing. */
export async function requestRotation(db: Db, ref: string, actor: string): Promise<Tenant> {
  return withLockedTenant(db, ref, async (trx, tenant) => {
    if (hasTag(tenant.state, 'gone')) throw tenantGone(tenant.state)
    const requestedAt = new Date().toISOString()
    await appendHistory(trx, tenant, 'CREDENTIALS_ROTATED', actor, { requested_at: requestedAt })
    await writeOutbox(trx, [jobRow(tenant, 'rotate', { requestedAt }), webhookRow(tenant, 'tenant.credentials_rotated')])
    return tenant
  })
}
