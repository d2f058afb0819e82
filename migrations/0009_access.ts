// Access control: principals (people or services) with scopes, their API keys
// (named, expiring, last use recorded), the tenants each may act on (grants,
// or every tenant, less denials) and the tenant it lands on. Keys made before
// this migration belonged to principals with every right: they keep them.
import { sql, type Kysely } from 'kysely'

const ALL_SCOPES = ['tenants:read', 'tenants:write', 'lifecycle', 'tenants:delete', 'credentials', 'migrations', 'webhooks', 'admin']

export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    CREATE TABLE principals (
      name text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_.-]{0,62}$'),
      scopes text[] NOT NULL DEFAULT '{}',
      all_tenants boolean NOT NULL DEFAULT false,
      main_tenant uuid REFERENCES tenants (id),
      main_tenant_lost text,
      description text,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now()
    )`.execute(db)
  await sql`
    INSERT INTO principals (name, scopes, all_tenants)
    SELECT DISTINCT principal, ${ALL_SCOPES}::text[], true FROM api_keys
    UNION SELECT 'admin', ${ALL_SCOPES}::text[], true
    ON CONFLICT DO NOTHING`.execute(db)
  await sql`
    ALTER TABLE api_keys
      ADD COLUMN name text,
      ADD COLUMN expires_at timestamptz,
      ADD COLUMN last_used_at timestamptz,
      ADD CONSTRAINT api_keys_principal FOREIGN KEY (principal) REFERENCES principals (name) ON DELETE CASCADE`.execute(db)
  // An endpoint receives only the events of tenants its creator may see (none of the config endpoint's limits: it has no owner).
  await sql`ALTER TABLE webhook_endpoints ADD COLUMN owner text`.execute(db)
  for (const table of ['principal_grants', 'principal_denials']) {
    await sql`
      CREATE TABLE ${sql.table(table)} (
        principal text NOT NULL REFERENCES principals (name) ON DELETE CASCADE,
        tenant_id uuid NOT NULL REFERENCES tenants (id),
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (principal, tenant_id)
      )`.execute(db)
  }
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`DROP TABLE IF EXISTS principal_denials, principal_grants`.execute(db)
  await sql`ALTER TABLE webhook_endpoints DROP COLUMN owner`.execute(db)
  await sql`ALTER TABLE api_keys DROP CONSTRAINT api_keys_principal, DROP COLUMN name, DROP COLUMN expires_at, DROP COLUMN last_used_at`.execute(db)
  await sql`DROP TABLE IF EXISTS principals`.execute(db)
}
