// Control-plane settings: named values written once by the first process.
import type { Db } from './index.js'

/** Stores `value` under `name` unless a value is there already; returns the stored one. */
export async function ensureSetting(db: Db, name: string, value: Buffer): Promise<Buffer> {
  await db
    .insertInto('landlord_settings')
    .values({ name, value })
    .onConflict((oc) => oc.column('name').doNothing())
    .execute()
  const row = await db.selectFrom('landlord_settings').select('value').where('name', '=', name).executeTakeFirstOrThrow()
  return row.value
}
