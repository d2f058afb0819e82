// What Landlord writes into Vault's database secrets engine: the cluster
// connection and, per tenant, a role whose statements make and end a login
// of the tenant's owner role. Vault fills in {{name}}, {{password}} and
// {{expiration}}; the owner role's name is quoted here.
// https://developer.hashicorp.com/vault/api-docs/secret/databases/postgresql
import pg from 'pg'
import type { Config } from '../config.js'
import { quoteIdent } from '../tenancy/identifiers.js'

/** database/config/<connection>: the tenant cluster, for Landlord's roles only. */
export function connectionConfig(config: Config) {
  const url = new URL(config.tenantClusterUrl)
  const username = decodeURIComponent(url.username)
  const password = decodeURIComponent(url.password)
  url.username = '{{username}}'
  url.password = password ? '{{password}}' : ''
  return {
    plugin_name: 'postgresql-database-plugin',
    // Templated: Vault substitutes the credentials, so the URL never holds them.
    connection_url: url.toString().replace('%7B%7Busername%7D%7D', '{{username}}').replace('%7B%7Bpassword%7D%7D', '{{password}}'),
    username,
    password,
    allowed_roles: `${config.tenantDbPrefix}*`,
    // Logins are named like Landlord's own: `<tenant database>-<12 chars>`, so a wipe finds every one.
    username_template: '{{.RoleName}}-{{random 12 | lowercase}}',
    verify_connection: true,
  }
}

/** database/roles/<tenant database>: logins of the owner role and nothing else. */
export function roleConfig(config: Config, connection: string, owner: string) {
  const role = quoteIdent(owner)
  return {
    db_name: connection,
    creation_statements: [
      `CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}' IN ROLE ${role};`,
      // Sessions act as the owner, so whatever they create belongs to the tenant, not to the login.
      `ALTER ROLE "{{name}}" SET role = ${pg.escapeLiteral(owner)};`,
    ],
    revocation_statements: [
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{{name}}';`,
      `REASSIGN OWNED BY "{{name}}" TO ${role};`,
      `DROP OWNED BY "{{name}}";`,
      // Objects it owns in the tenant database keep it until the wipe: NOLOGIN meanwhile.
      `DO $$ BEGIN EXECUTE 'DROP ROLE IF EXISTS "{{name}}"'; EXCEPTION WHEN dependent_objects_still_exist THEN EXECUTE 'ALTER ROLE "{{name}}" NOLOGIN'; END $$;`,
    ],
    default_ttl: Math.round(config.credentialTtlMs / 1000),
    max_ttl: Math.round(config.credentialMaxTtlMs / 1000),
  }
}
