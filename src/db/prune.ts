// Deletes what has served its purpose, for the prune sweep: batches of 1000
// keep each statement short. Tenant history is evidence and is never pruned.
import { sql } from 'kysely'
import type { Db } from './index.js'

/** Idempotency keys past their 24 hours. */
export async function pruneIdempotencyKeys(db: Db): Promise<number> {
  const r = await db.deleteFrom('idempotency_keys').where('created_at', '<', sql<Date>`now() - interval '24 hours'`).executeTakeFirst()
  return Number(r.numDeletedRows)
}

/** Settled webhook deliveries created before `cutoff`, with their attempts. */
export async function pruneSettledDeliveries(db: Db, cutoff: Date): Promise<number> {
  const ids = (
    await db.selectFrom('webhook_deliveries').select('id').where('status', 'in', ['succeeded', 'failed']).where('created_at', '<', cutoff).limit(1000).execute()
  ).map((d) => d.id)
  if (ids.length === 0) return 0
  await db.transaction().execute(async (trx) => {
    await trx.deleteFrom('webhook_attempts').where('delivery_id', 'in', ids).execute()
    await trx.deleteFrom('webhook_deliveries').where('id', 'in', ids).execute()
  })
  return ids.length
}
