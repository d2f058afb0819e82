// Fleet migrations: a run (what it targets, how it schedules, how it ended)
// and one row per tenant it selected, so a restart loses nothing and a
// straggler is never out of sight. Tenants keep their last migration error
// and a quarantine mark, which leaves a tenant that keeps failing out of
// later runs until it is retried by name.
import { sql, type Kysely } from 'kysely'

export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    CREATE TABLE fleet_migrations (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      seq bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
      status text NOT NULL DEFAULT 'running'
        CHECK (status IN ('running', 'completed', 'completed_with_errors', 'stopped', 'cancelled')),
      target_version integer NOT NULL,
      files jsonb NOT NULL,
      tenants text[],
      plan text,
      concurrency integer NOT NULL CHECK (concurrency > 0),
      canary integer NOT NULL DEFAULT 0 CHECK (canary >= 0),
      on_error text NOT NULL CHECK (on_error IN ('continue', 'stop')),
      dry_run boolean NOT NULL DEFAULT false,
      stop_reason text,
      requested_by text NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      retried_at timestamptz,
      finished_at timestamptz
    )`.execute(db)
  // One run at a time: a second open run is a unique violation.
  await sql`CREATE UNIQUE INDEX fleet_migrations_one_open ON fleet_migrations ((true)) WHERE finished_at IS NULL`.execute(db)

  await sql`
    CREATE TABLE fleet_migration_tenants (
      run_id uuid NOT NULL REFERENCES fleet_migrations (id) ON DELETE CASCADE,
      tenant_id uuid NOT NULL REFERENCES tenants (id),
      ordinal integer NOT NULL,
      slug text NOT NULL,
      canary boolean NOT NULL DEFAULT false,
      status text NOT NULL
        CHECK (status IN ('pending', 'queued', 'running', 'succeeded', 'failed', 'skipped', 'deferred')),
      reason text,
      from_version integer,
      to_version integer,
      failed_version integer,
      error text,
      attempts integer NOT NULL DEFAULT 0,
      started_at timestamptz,
      finished_at timestamptz,
      PRIMARY KEY (run_id, tenant_id),
      UNIQUE (run_id, ordinal)
    )`.execute(db)
  await sql`CREATE INDEX fleet_migration_tenants_open ON fleet_migration_tenants (run_id, ordinal)
    WHERE status IN ('pending', 'queued', 'running')`.execute(db)

  // The fleet job rows of one tenant, for the sweep that finds lost jobs.
  await sql`CREATE INDEX outbox_fleet_jobs ON outbox (tenant_id, seq) WHERE kind = 'fleet'`.execute(db)

  await sql`
    ALTER TABLE tenants
      ADD COLUMN migration_failures integer NOT NULL DEFAULT 0,
      ADD COLUMN migration_error text,
      ADD COLUMN quarantined_at timestamptz`.execute(db)
  await sql`CREATE INDEX tenants_schema_version ON tenants (schema_version) WHERE state <> 'wiped'`.execute(db)
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`DROP INDEX IF EXISTS tenants_schema_version`.execute(db)
  await sql`DROP INDEX IF EXISTS outbox_fleet_jobs`.execute(db)
  await sql`ALTER TABLE tenants DROP COLUMN migration_failures, DROP COLUMN migration_error, DROP COLUMN quarantined_at`.execute(db)
  await sql`DROP TABLE IF EXISTS fleet_migration_tenants`.execute(db)
  await sql`DROP TABLE IF EXISTS fleet_migrations`.execute(db)
}
