// Idempotency keys: the first response to a (principal, key) is stored and
// replayed; the same key with another request is refused.
import { sql, type Transaction } from 'kysely'
import type { Db } from './index.js'
import type { Database, IdempotencyKeyTable } from './schema.js'

export type Claim =
  | { kind: 'claimed' }
  | { kind: 'mismatch' }
  | { kind: 'in_progress' }
  | { kind: 'replay'; status: number; response: unknown; location: string | null }

/**
 * Claims a key for this request. Keys live 24 hours; a claim left without a
 * response for a minute (its process died) may be taken over.
 */
export async function claimKey(db: Db, principal: string, key: string, requestHash: string): Promise<Claim> {
  const claimed = await db
    .insertInto('idempotency_keys')
    .values({ principal, key, request_hash: requestHash })
    .onConflict((oc) =>
      oc
        .columns(['principal', 'key'])
        .doUpdateSet({ request_hash: requestHash, status_code: null, response: null, location: null, created_at: sql`now()` })
        .where((eb) =>
          eb.or([
            eb('idempotency_keys.created_at', '<', sql<Date>`now() - interval '24 hours'`),
            // An abandoned claim is taken over only by the same request: another body is still a 422.
            eb.and([
              eb('idempotency_keys.status_code', 'is', null),
              eb('idempotency_keys.request_hash', '=', requestHash),
              eb('idempotency_keys.created_at', '<', sql<Date>`now() - interval '1 minute'`),
            ]),
          ]),
        ),
    )
    .returning('key')
    .executeTakeFirst()
  if (claimed) return { kind: 'claimed' }
  const row = await db
    .selectFrom('idempotency_keys')
    .selectAll()
    .where('principal', '=', principal)
    .where('key', '=', key)
    .executeTakeFirst()
  if (!row) return claimKey(db, principal, key, requestHash) // expired between the two statements
  if (row.request_hash !== requestHash) return { kind: 'mismatch' }
  if (row.status_code === null) return { kind: 'in_progress' }
  return { kind: 'replay', status: row.status_code, response: row.response, location: row.location }
}

export async function completeKey(
  db: Db | Transaction<Database>,
  principal: string,
  key: string,
  result: Pick<IdempotencyKeyTable, 'status_code' | 'location'> & { response: unknown },
): Promise<void> {
  await db
    .updateTable('idempotency_keys')
    .set({ status_code: result.status_code, response: JSON.stringify(result.response), location: result.location })
    .where('principal', '=', principal)
    .where('key', '=', key)
    .execute()
}

/** Frees a key whose request failed on our side, so a retry can run it again. */
export async function releaseKey(db: Db, principal: string, key: string): Promise<void> {
  await db.deleteFrom('idempotency_keys').where('principal', '=', principal).where('key', '=', key).execute()
}
