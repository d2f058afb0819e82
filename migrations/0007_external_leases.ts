// Leases issued by an external secrets backend (Vault) keep that backend's
// lease id, which is what clients see and what revokes it there.
import { sql, type Kysely } from 'kysely'

export async function up(db: Kysely<any>): Promise<void> {
  await sql`ALTER TABLE leases ADD COLUMN external_id text`.execute(db)
  await sql`CREATE UNIQUE INDEX leases_external_id ON leases (external_id) WHERE external_id IS NOT NULL`.execute(db)
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`ALTER TABLE leases DROP COLUMN external_id`.execute(db)
}
