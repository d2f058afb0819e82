// Operator requests that wrap a transition with the checks around it
// (retention, legal hold), or act on a tenant without moving its state
// (legal hold, credential rotation). Each is one transaction.
import { sql, type Transaction } from 'kysely'
import type { Db } from '../db/index.js'
import type { Database, Tenant } from '../db/schema.js'
import { findTenant, getTenant } from '../db/tenants.js'
import { holdNotAllowed, retentionExpired, tenantGone } from '../errors.js'
import type { OperatorEvent } from './events.js'
import { appendHistory, applyEvent, jobRow, webhookRow, writeOutbox } from './transition.js'

export async function requestEvent(db: Db, ref: string, event: OperatorEvent, actor: string): Promise<Tenant> {
  return (await applyEvent(db, ref, event, { actor }))!
}

/**
 * Decommissions a tenant, keeping its data for `retentionMs` (0 wipes now). On
 * a tenant already decommissioned, zero retention wipes it without waiting.
 */
export async function decommission(db: Db, ref: string, retentionMs: number, actor: string): Promise<Tenant> {
  const current = await findTenant(db, ref)
  if (current?.state === 'decommissioned' && retentionMs === 0) {
    return (await applyEvent(db, current.id, { type: 'WIPE' }, { actor, expectState: 'decommissioned' })) ?? decommission(db, ref, retentionMs, actor)
  }
  const tenant = await applyEvent(
    db,
    ref,
    { type: 'DECOMMISSION', retentionMs },
    {
      actor,
      extra: () => ({ wipe_after: new Date(Date.now() + retentionMs) }),
      data: { retention_seconds: retentionMs / 1000 },
    },
  )
  return tenant!
}

/** Brings a decommissioned tenant back, as long as its retention has not run out. */
export async function restoreTenant(db: Db, ref: string, actor: string): Promise<Tenant> {
  const tenant = await applyEvent(
    db,
    ref,
    { type: 'RESTORE' },
    {
      actor,
      check: (t) => {
        if (t.state === 'decommissioned' && t.wipe_after && t.wipe_after <= new Date()) throw retentionExpired(t.wipe_after)
      },
      extra: () => ({ wipe_after: null }),
    },
  )
  return tenant!
}

async function withLockedTenant<T>(db: Db, ref: string, fn: (trx: Transaction<Database>, tenant: Tenant) => Promise<T>): Promise<T> {
  return db.transaction().execute(async (trx) => {
    const tenant = await getTenant(trx, ref, { forUpdate: true })
    return fn(trx, tenant)
  })
}

export async function placeLegalHold(db: Db, ref: string, reason: string, actor: string): Promise<Tenant> {
  return withLockedTenant(db, ref, async (trx, tenant) => {
    if (tenant.state === 'wiping' || tenant.state === 'wiped') throw holdNotAllowed(tenant.state)
    const updated = await trx
      .updateTable('tenants')
      .set({ legal_hold_reason: reason, legal_hold_at: sql<Date>`now()`, legal_hold_by: actor, updated_at: sql<Date>`now()` })
      .where('id', '=', tenant.id)
      .returningAll()
      .executeTakeFirstOrThrow()
    await appendHistory(trx, tenant, 'LEGAL_HOLD_PLACED', actor, { reason })
    return updated
  })
}

export async function releaseLegalHold(db: Db, ref: string, actor: string): Promise<Tenant> {
  return withLockedTenant(db, ref, async (trx, tenant) => {
    if (tenant.legal_hold_at === null) return tenant
    const updated = await trx
      .updateTable('tenants')
      .set({ legal_hold_reason: null, legal_hold_at: null, legal_hold_by: null, updated_at: sql<Date>`now()` })
      .where('id', '=', tenant.id)
      .returningAll()
      .executeTakeFirstOrThrow()
    await appendHistory(trx, tenant, 'LEGAL_HOLD_RELEASED', actor, { reason: tenant.legal_hold_reason, placed_by: tenant.legal_hold_by })
    return updated
  })
}

/** Queues the revocation of every lease issued so far, and tells billing. */
export async function requestRotation(db: Db, ref: string, actor: string): Promise<Tenant> {
  return withLockedTenant(db, ref, async (trx, tenant) => {
    if (tenant.state === 'wiping' || tenant.state === 'wiped') throw tenantGone(tenant.state)
    const requestedAt = new Date().toISOString()
    await appendHistory(trx, tenant, 'CREDENTIALS_ROTATED', actor, { requested_at: requestedAt })
    await writeOutbox(trx, [jobRow(tenant, 'rotate', { requestedAt }), webhookRow(tenant, 'tenant.credentials_rotated')])
    return tenant
  })
}
