// A tenant's history: one append-only row per transition, and per act that
// changes no state (a legal hold, a rotation, a wipe receipt).
import type { Transaction } from 'kysely'
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

export async function appendEvent(db: Db | Transaction<Database>, row: HistoryRow): Promise<void> {
  await db
    .insertInto('tenant_events')
    .values({ ...row, data: JSON.stringify(row.data ?? {}) })
    .execute()
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
