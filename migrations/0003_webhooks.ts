// Webhook endpoints, one delivery row per (event, endpoint) with its attempts,
// and the outbox marker that says an event has been fanned out to endpoints.
import { sql, type Kysely } from 'kysely'

export async function up(db: Kysely<any>): Promise<void> {
  await sql`ALTER TABLE outbox ADD COLUMN fanned_out_at timestamptz`.execute(db)
  await sql`CREATE INDEX outbox_webhooks_pending ON outbox (tenant_id, seq) WHERE kind = 'webhook' AND fanned_out_at IS NULL`.execute(db)

  await sql`
    CREATE TABLE webhook_endpoints (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      url text NOT NULL,
      description text,
      event_types text[],
      secret bytea NOT NULL,
      managed_by text UNIQUE,
      enabled boolean NOT NULL DEFAULT true,
      disabled_at timestamptz,
      disabled_reason text,
      failing_since timestamptz,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      deleted_at timestamptz
    )`.execute(db)

  await sql`
    CREATE TABLE webhook_endpoint_events (
      id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      endpoint_id uuid NOT NULL REFERENCES webhook_endpoints (id),
      type text NOT NULL,
      actor text NOT NULL,
      data jsonb NOT NULL DEFAULT '{}',
      created_at timestamptz NOT NULL DEFAULT now()
    )`.execute(db)

  await sql`
    CREATE TABLE webhook_deliveries (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      endpoint_id uuid NOT NULL REFERENCES webhook_endpoints (id),
      event_id uuid NOT NULL REFERENCES outbox (id),
      event_type text NOT NULL,
      tenant_id uuid,
      seq bigint NOT NULL,
      status text NOT NULL DEFAULT 'pending',
      attempts integer NOT NULL DEFAULT 0,
      next_attempt_at timestamptz NOT NULL DEFAULT now(),
      locked_until timestamptz,
      last_status_code integer,
      last_error text,
      created_at timestamptz NOT NULL DEFAULT now(),
      delivered_at timestamptz,
      UNIQUE (endpoint_id, event_id)
    )`.execute(db)
  await sql`CREATE INDEX webhook_deliveries_line ON webhook_deliveries (endpoint_id, tenant_id, seq) WHERE status IN ('pending', 'delivering')`.execute(db)
  await sql`CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status IN ('pending', 'delivering')`.execute(db)
  await sql`CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, created_at)`.execute(db)

  await sql`
    CREATE TABLE webhook_attempts (
      id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      delivery_id uuid NOT NULL REFERENCES webhook_deliveries (id),
      attempted_at timestamptz NOT NULL DEFAULT now(),
      status_code integer,
      duration_ms integer NOT NULL,
      response_excerpt text,
      error text
    )`.execute(db)
  await sql`CREATE INDEX webhook_attempts_delivery ON webhook_attempts (delivery_id, id)`.execute(db)
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`DROP TABLE webhook_attempts`.execute(db)
  await sql`DROP TABLE webhook_deliveries`.execute(db)
  await sql`DROP TABLE webhook_endpoint_events`.execute(db)
  await sql`DROP TABLE webhook_endpoints`.execute(db)
  await sql`ALTER TABLE outbox DROP COLUMN fanned_out_at`.execute(db)
}
