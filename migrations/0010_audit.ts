// The audit log: one row per mutating request, per transition and per
// credential issue, naming who (principal, key), what (route or event,
// outcome), which tenant, and from where. Rows are hash-chained: each row's
// hash covers its content and the previous row's hash, so an edit or a
// deletion made around the triggers (a superuser can disable them) still
// shows in `landlord audit verify`. Rows are append-only for everyone else.
import { sql, type Kysely } from 'kysely'

export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    CREATE TABLE audit_log (
      seq bigint PRIMARY KEY,
      at timestamptz NOT NULL,
      principal text,
      key_id uuid,
      tenant_id uuid,
      tenant text,
      action text NOT NULL,
      request_id text,
      route text,
      status integer,
      outcome text NOT NULL,
      source text,
      data jsonb NOT NULL DEFAULT '{}',
      prev_hash text NOT NULL,
      hash text NOT NULL
    )`.execute(db)
  await sql`CREATE INDEX audit_log_tenant ON audit_log (tenant_id, seq)`.execute(db)
  await sql`CREATE INDEX audit_log_principal ON audit_log (principal, seq)`.execute(db)
  await sql`
    CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      RAISE EXCEPTION 'audit_log is append-only';
    END $$`.execute(db)
  await sql`
    CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()`.execute(db)
  await sql`
    CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()`.execute(db)
  await sql`REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM PUBLIC`.execute(db)
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`DROP TABLE IF EXISTS audit_log`.execute(db)
  await sql`DROP FUNCTION IF EXISTS audit_log_append_only()`.execute(db)
}
