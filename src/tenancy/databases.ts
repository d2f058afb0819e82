// Tenant databases on a cluster. Each function checks, then acts, and is safe to run twice.
import pg from 'pg'
import { withDatabase } from '../db/index.js'
import { pollUntil } from '../poll.js'
import { hasSqlState, SQLSTATE } from '../sqlstate.js'
import { NotOursError, quoteIdent } from './identifiers.js'

/**
 * Creates the tenant database and closes it to everyone but the tenant.
 *
 * - It is cloned from template0, which accepts no connections: nothing any
 *   login wrote to template1 reaches it, and no session can block the clone.
 * - Landlord's admin role owns it, not the tenant: a database's owner may
 *   ALTER (IS_TEMPLATE, CONNECTION LIMIT, ALLOW_CONNECTIONS, OWNER, RENAME)
 *   and DROP it. The tenant's role gets CONNECT, TEMPORARY and CREATE, and
 *   owns the `public` schema and everything in it.
 * - PUBLIC gets CONNECT and TEMPORARY on every new database and CREATE
 *   DATABASE never copies grants, so the REVOKE runs every time.
 *   https://www.postgresql.org/docs/15/ddl-priv.html
 *
 * A database of this name that is not this tenant's is never touched.
 */
export async function ensureDatabase(admin: pg.Pool, clusterUrl: string, tenant: TenantObjects, marker: string): Promise<'created' | 'exists'> {
  const { database: name, owner } = tenant
  let outcome: 'created' | 'exists' = 'exists'
  const found = await inspectDatabase(admin, name, owner, marker)
  if (found.kind === 'foreign') throw new NotOursError(found.reason)
  if (found.kind === 'absent') {
    try {
      // Owned by the tenant's marked role at first, so that a crash before the
      // marker comment still leaves a database provably this tenant's; handed
      // to the admin role below. Cannot run in a transaction: pool.query autocommits.
      // Closed from birth: PUBLIC's default CONNECT would let any login in
      // until the REVOKE below, and a session opened then would outlive it.
      await admin.query(`CREATE DATABASE ${quoteIdent(name)} OWNER ${quoteIdent(owner)} TEMPLATE template0 ALLOW_CONNECTIONS false`)
      outcome = 'created'
    } catch (err) {
      if (!hasSqlState(err, SQLSTATE.duplicateDatabase, SQLSTATE.uniqueViolation)) throw err
      const again = await inspectDatabase(admin, name, owner, marker)
      if (again.kind === 'foreign') throw new NotOursError(again.reason)
    }
  }
  await secureDatabase(admin, clusterUrl, tenant, marker, { allowConnections: true })
  return outcome
}

/**
 * Puts a database that is this tenant's (proven by the caller) in the shape
 * ensureDatabase gives it: marked, owned by the admin role, accepting
 * connections, open to the tenant's role only, its `public` schema the
 * tenant's. Also upgrades a database an earlier version let the tenant own.
 */
export async function secureDatabase(
  admin: pg.Pool,
  clusterUrl: string,
  tenant: TenantObjects,
  marker: string,
  opts: { allowConnections: boolean },
): Promise<void> {
  const db = quoteIdent(tenant.database)
  const owner = quoteIdent(tenant.owner)
  await admin.query(`COMMENT ON DATABASE ${db} IS ${pg.escapeLiteral(marker)}`)
  await admin.query(`ALTER DATABASE ${db} OWNER TO CURRENT_USER`)
  // Settings a former owner may have left (a search_path, say) go too.
  await admin.query(`ALTER DATABASE ${db} RESET ALL`)
  await admin.query(`ALTER DATABASE ${db} IS_TEMPLATE false`)
  await admin.query(`REVOKE ALL ON DATABASE ${db} FROM PUBLIC`)
  await admin.query(`GRANT CONNECT, TEMPORARY, CREATE ON DATABASE ${db} TO ${owner}`)
  // Whoever got in while it was open (a crash right after an older CREATE
  // DATABASE, say) and is not this tenant's goes now.
  await admin.query(
    `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
      WHERE datname = $1 AND pid <> pg_backend_pid() AND usesysid IS NOT NULL AND NOT pg_has_role(usesysid, $2, 'MEMBER')`,
    [tenant.database, tenant.owner],
  )
  // A fenced database is left fenced: the admin session below needs it open for a moment.
  await admin.query(`ALTER DATABASE ${db} ALLOW_CONNECTIONS true`)
  // The tenant owns its schema. This admin session reads one catalog row,
  // schema-qualified, and runs one utility statement: no tenant code can run
  // in it (event triggers need a superuser to create).
  await withTenantClient(clusterUrl, tenant.database, async (client) => {
    const r = await client.query<{ owner: string }>(
      "SELECT pg_catalog.pg_get_userbyid(nspowner) AS owner FROM pg_catalog.pg_namespace WHERE nspname = 'public'",
    )
    const current = r.rows[0]?.owner
    if (current !== undefined && current !== tenant.owner) await client.query(`ALTER SCHEMA public OWNER TO ${owner}`)
    await installRoleGuard(client, tenant.owner)
  })
  if (!opts.allowConnections) await fenceDatabase(admin, tenant.database)
}

/**
 * An event trigger, owned by the admin role in a schema only it owns, that
 * refuses any DDL leaving this database depending on a role outside the
 * tenant (a GRANT, a policy, default privileges for another tenant's role):
 * such a grant would reach into another tenant, and keep its role alive, or
 * its wipe waiting, on this database. Non-superusers cannot drop, alter or
 * disable event triggers. The function runs with the caller's rights and
 * resolves nothing through the search path.
 * https://www.postgresql.org/docs/15/event-triggers.html
 */
async function installRoleGuard(client: pg.Client, owner: string): Promise<void> {
  await client.query('CREATE SCHEMA IF NOT EXISTS landlord AUTHORIZATION CURRENT_USER')
  await client.query(`
    CREATE OR REPLACE FUNCTION landlord.tenant_roles_only() RETURNS event_trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
    BEGIN
      IF EXISTS (
        SELECT 1 FROM pg_catalog.pg_shdepend s
         WHERE s.dbid = (SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database())
           AND s.refclassid = 'pg_catalog.pg_authid'::pg_catalog.regclass
           AND NOT pg_catalog.pg_has_role(s.refobjid, ${pg.escapeLiteral(owner)}, 'MEMBER')
      ) THEN
        RAISE EXCEPTION 'only roles of this tenant may be given privileges in its database' USING ERRCODE = '42501';
      END IF;
    END $fn$`)
  const exists = await client.query("SELECT 1 FROM pg_catalog.pg_event_trigger WHERE evtname = 'landlord_tenant_roles_only'")
  if (!exists.rowCount) {
    await client.query('CREATE EVENT TRIGGER landlord_tenant_roles_only ON ddl_command_end EXECUTE FUNCTION landlord.tenant_roles_only()')
  }
}

/** The names of a tenant's objects on its cluster. */
export interface TenantObjects {
  database: string
  owner: string
}

export type DatabaseProof = { kind: 'absent' } | { kind: 'ours'; legacy: boolean } | { kind: 'foreign'; reason: string }

/**
 * Whether the database of this name is the tenant's: owned by Landlord's
 * admin role with the tenant's marker as its comment (only the owner or a
 * superuser can set it), or owned by the tenant's own role (whose marker the
 * caller proves): half-way through provisioning, or provisioned by an earlier
 * version that let the tenant own its database (`legacy`).
 */
export async function inspectDatabase(admin: pg.Pool, name: string, owner: string, marker: string): Promise<DatabaseProof> {
  const r = await admin.query<{ owner: string; marker: string | null; admin: string }>(
    `SELECT pg_get_userbyid(datdba) AS owner, shobj_description(oid, 'pg_database') AS marker, current_user AS admin
       FROM pg_database WHERE datname = $1`,
    [name],
  )
  const row = r.rows[0]
  if (!row) return { kind: 'absent' }
  if (row.owner === owner) return { kind: 'ours', legacy: true }
  if (row.owner === row.admin && row.marker === marker) return { kind: 'ours', legacy: false }
  const why = row.owner !== row.admin ? `is owned by ${row.owner}` : row.marker === null ? 'carries no Landlord marker' : 'carries another marker'
  return { kind: 'foreign', reason: `database ${name} exists but was not made by Landlord for this tenant (it ${why}); refusing to touch it` }
}

export async function databaseExists(admin: pg.Pool, name: string): Promise<boolean> {
  const found = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])
  return (found.rowCount ?? 0) > 0
}

/**
 * Limits of every admin session on the tenant cluster: a tenant that holds a
 * lock Landlord needs (its own role's catalog row in an open transaction, say)
 * makes a statement fail after 10 s, to be retried, instead of holding an
 * admin connection forever.
 */
export const ADMIN_SESSION_LIMITS = '-c lock_timeout=10s -c statement_timeout=5min'

/**
 * A short-lived admin client on one tenant database. Tenant databases are many
 * and `max_connections` is not: never keep a pool per tenant open.
 */
export async function withTenantClient<T>(clusterUrl: string, database: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  // Only pg_catalog on the search path: no name resolves to a tenant's object.
  // A lock a tenant holds makes the work fail and retry, never hang.
  const client = new pg.Client({
    connectionString: withDatabase(clusterUrl, database),
    application_name: 'landlord',
    options: `-c search_path=pg_catalog ${ADMIN_SESSION_LIMITS}`,
  })
  await client.connect()
  try {
    return await fn(client)
  } finally {
    await client.end()
  }
}

/**
 * Ends every session on a database, then polls until none is left.
 * pg_terminate_backend without a timeout returns at once; the poll is what waits.
 */
export async function terminateSessions(admin: pg.Pool, database: string, opts: { user?: string } = {}): Promise<number> {
  const filter = opts.user === undefined ? '' : ' AND usename = $2'
  const params = opts.user === undefined ? [database] : [database, opts.user]
  const ended = await admin.query(
    `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()${filter}`,
    params,
  )
  const gone = await pollUntil(
    async () => {
      const left = await admin.query(`SELECT 1 FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()${filter}`, params)
      return left.rowCount ? undefined : true
    },
    { timeoutMs: 10_000, intervalMs: 10 },
  )
  if (!gone) throw new Error(`sessions on ${database} did not end within 10 s`)
  return ended.rowCount ?? 0
}

/** Refuses new connections, then ends the open ones: the database is fenced once this returns. */
export async function fenceDatabase(admin: pg.Pool, database: string): Promise<number> {
  if (!(await databaseExists(admin, database))) return 0
  await admin.query(`ALTER DATABASE ${quoteIdent(database)} ALLOW_CONNECTIONS false`)
  return terminateSessions(admin, database)
}

/**
 * DROP DATABASE ... WITH (FORCE) ends the sessions it finds; gone already is
 * fine. A template database cannot be dropped, so it is unmarked first.
 */
export async function dropDatabase(admin: pg.Pool, database: string): Promise<boolean> {
  if (!(await databaseExists(admin, database))) return false
  try {
    await admin.query(`ALTER DATABASE ${quoteIdent(database)} IS_TEMPLATE false ALLOW_CONNECTIONS false`)
  } catch (err) {
    if (!hasSqlState(err, SQLSTATE.invalidCatalogName)) throw err // dropped meanwhile
  }
  await admin.query(`DROP DATABASE IF EXISTS ${quoteIdent(database)} WITH (FORCE)`)
  return true
}
