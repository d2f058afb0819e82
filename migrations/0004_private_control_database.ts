// The control database holds every tenant's registry and sealed secrets:
// close it to PUBLIC, as tenant databases are, so that tenant logins on the
// same cluster cannot even connect to it. Landlord's own role keeps access.
import { sql, type Kysely } from 'kysely'

export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    DO $$
    BEGIN
      EXECUTE format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO %I', current_database(), current_user);
      EXECUTE format('REVOKE ALL ON DATABASE %I FROM PUBLIC', current_database());
    END $$`.execute(db)
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`
    DO $$
    BEGIN
      EXECUTE format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO PUBLIC', current_database());
    END $$`.execute(db)
}
