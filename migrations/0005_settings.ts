// Control-plane settings; first, a check value sealed with the master key, so
// a process started with another key refuses to start instead of failing later.
import { sql, type Kysely } from 'kysely'

export async function up(db: Kysely<any>): Promise<void> {
  await sql`CREATE TABLE landlord_settings (name text PRIMARY KEY, value bytea NOT NULL, created_at timestamptz NOT NULL DEFAULT now())`.execute(db)
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`DROP TABLE landlord_settings`.execute(db)
}
