// The tenant registry: tenants, their append-only history, the transactional
// outbox, idempotency keys and API keys.
import { sql, type Kysely } from 'kysely'

export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    CREATE TABLE tenants (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      seq bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
      slug text NOT NULL UNIQUE,
      name text,
      plan text,
      region text,
      metadata jsonb NOT NULL DEFAULT '{}',
      cluster text NOT NULL DEFAULT 'default',
      database_name text NOT NULL UNIQUE,
      owner_role text NOT NULL,
      state text NOT NULL,
      snapshot jsonb NOT NULL,
      version integer NOT NULL DEFAULT 1,
      schema_version integer,
      operation text,
      error text,
      wipe_after timestamptz,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now()
    )`.execute(db)
  await sql`CREATE INDEX tenants_state_seq ON tenants (state, seq)`.execute(db)
  await sql`CREATE INDEX tenants_plan_seq ON tenants (plan, seq)`.execute(db)

  await sql`
    CREATE TABLE tenant_events (
      id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      tenant_id uuid NOT NULL REFERENCES tenants (id),
      type text NOT NULL,
      from_state text,
      to_state text,
      actor text NOT NULL,
      data jsonb NOT NULL DEFAULT '{}',
      created_at timestamptz NOT NULL DEFAULT now()
    )`.execute(db)
  await sql`CREATE INDEX tenant_events_tenant ON tenant_events (tenant_id, id)`.execute(db)
  // History is evidence: refuse edits even from the application's own role.
  await sql`
    CREATE FUNCTION tenant_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      RAISE EXCEPTION 'tenant_events is append-only';
    END $$`.execute(db)
  await sql`
    CREATE TRIGGER tenant_events_append_only BEFORE UPDATE OR DELETE ON tenant_events
    FOR EACH ROW EXECUTE FUNCTION tenant_events_append_only()`.execute(db)

  await sql`
    CREATE TABLE outbox (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      seq bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
      kind text NOT NULL,
      name text NOT NULL,
      tenant_id uuid REFERENCES tenants (id),
      payload jsonb NOT NULL DEFAULT '{}',
      created_at timestamptz NOT NULL DEFAULT now(),
      relayed_at timestamptz
    )`.execute(db)
  await sql`CREATE INDEX outbox_pending ON outbox (seq) WHERE relayed_at IS NULL`.execute(db)

  await sql`
    CREATE TABLE idempotency_keys (
      principal text NOT NULL,
      key text NOT NULL,
      request_hash text NOT NULL,
      status_code integer,
      response jsonb,
      location text,
      created_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (principal, key)
    )`.execute(db)

  await sql`
    CREATE TABLE api_keys (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      principal text NOT NULL,
      key_hash text NOT NULL UNIQUE,
      bootstrap boolean NOT NULL DEFAULT false,
      created_at timestamptz NOT NULL DEFAULT now(),
      revoked_at timestamptz
    )`.execute(db)
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const table of ['api_keys', 'idempotency_keys', 'outbox', 'tenant_events', 'tenants']) {
    await sql`DROP TABLE IF EXISTS ${sql.table(table)}`.execute(db)
  }
  await sql`DROP FUNCTION IF EXISTS tenant_events_append_only()`.execute(db)
}
