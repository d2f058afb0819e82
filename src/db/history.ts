// A tenant's history: one append-only row per transition, and per act that
// changes no state (a legal hold, a rotation, a wipe receipt).
import type { Transaction } from 'kysely'
import { appendAudit } from './audit.js'
import type { Db } from './index.js'
import type { Database } from './schema.js'

export interface HistoryRow {
  tenant_id: string
  type: string
  from_state: string | null
  to_state: string | null
  actor: string
  data?: Record<string, unknown>
}

/** Appends to the tenant's history and, in the same transaction, to the audit trail. */
export async function appendEvent(db: Db | Transaction<Database>, row: HistoryRow): Promise<void> {
  const write = async (trx: Transaction<Database>) => {
    await trx
      .insertInto('tenant_events')
      .values({ ...row, data: JSON.stringify(row.data ?? {}) })
      .execute()
    await appendAudit(trx, {
      principal: row.actor,
      tenantId: row.tenant_id,
      action: row.type,
      outcome: 'ok',
      data: { from_state: row.from_state, to_state: row.to_state },
    })
  }
  if (db.isTransaction) await write(db as Transaction<Database>)
  else await db.transaction().execute(write)
}

/** The latest event that moved the tenant into `state`: who asked, with what, when. */
export async function lastEntryInto(db: Db, tenantId: string, state: string) {
  return db
    .selectFrom('tenant_events')
    .select(['actor', 'created_at', 'type'])
    .where('tenant_id', '=', tenantId)
    .where('to_state', '=', state)
    .orderBy('id', 'desc')
    .executeTakeFirst()
}
