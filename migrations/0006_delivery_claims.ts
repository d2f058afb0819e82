// Each delivery attempt claims its row with a fresh token; the outcome is
// written only while the token still holds, so a late worker (its lock
// expired, or the endpoint deleted meanwhile) cannot overwrite a newer state.
import { sql, type Kysely } from 'kysely'

export async function up(db: Kysely<any>): Promise<void> {
  await sql`ALTER TABLE webhook_deliveries ADD COLUMN claim_token uuid`.execute(db)
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`ALTER TABLE webhook_deliveries DROP COLUMN claim_token`.execute(db)
}
