// Credentials and retention: lease records, per-tenant data keys, legal holds
// and the activity counters the hibernation sweep compares.
import { sql, type Kysely } from 'kysely'

export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    ALTER TABLE tenants
      ADD COLUMN legal_hold_reason text,
      ADD COLUMN legal_hold_at timestamptz,
      ADD COLUMN legal_hold_by text,
      ADD COLUMN activity_counter bigint,
      ADD COLUMN last_active_at timestamptz NOT NULL DEFAULT now()`.execute(db)
  await sql`CREATE INDEX tenants_wipe_due ON tenants (wipe_after) WHERE state = 'decommissioned'`.execute(db)

  await sql`
    CREATE TABLE tenant_keys (
      tenant_id uuid PRIMARY KEY REFERENCES tenants (id),
      wrapped_key bytea,
      created_at timestamptz NOT NULL DEFAULT now(),
      destroyed_at timestamptz
    )`.execute(db)

  await sql`
    CREATE TABLE leases (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      tenant_id uuid NOT NULL REFERENCES tenants (id),
      backend text NOT NULL,
      username text NOT NULL,
      principal text NOT NULL,
      idempotency_key text,
      secret bytea,
      expires_at timestamptz NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      revoked_at timestamptz
    )`.execute(db)
  await sql`CREATE INDEX leases_live ON leases (tenant_id) WHERE revoked_at IS NULL`.execute(db)
  await sql`CREATE INDEX leases_expiry ON leases (expires_at) WHERE revoked_at IS NULL`.execute(db)
  await sql`CREATE UNIQUE INDEX leases_idempotency ON leases (tenant_id, principal, idempotency_key) WHERE idempotency_key IS NOT NULL`.execute(db)
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`DROP TABLE leases`.execute(db)
  await sql`DROP TABLE tenant_keys`.execute(db)
  await sql`DROP INDEX tenants_wipe_due`.execute(db)
  await sql`
    ALTER TABLE tenants
      DROP COLUMN legal_hold_reason, DROP COLUMN legal_hold_at, DROP COLUMN legal_hold_by,
      DROP COLUMN activity_counter, DROP COLUMN last_active_at`.execute(db)
}
