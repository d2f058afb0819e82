// Readiness of the control-plane database.
import { sql } from 'kysely'
import type { Db } from './index.js'

/** Resolves once the database answers a query. */
export async function pingDb(db: Db): Promise<void> {
  await sql`SELECT 1`.execute(db)
}
