// Tenant databases on a cluster. Each function checks, then acts, and is safe to run twice.
import pg from 'pg'
import { withDatabase } from '../db/index.js'
import { quoteIdent } from './identifiers.js'

export class ForeignDatabaseError extends Error {
  constructor(database: string, owner: string) {
    super(`database ${database} exists but is owned by ${owner}, not by the tenant's role; refusing to adopt it`)
    this.name = 'ForeignDatabaseError'
  }
}

/**
 * Creates the tenant database owned by its role, then closes it to everyone
 * else. PUBLIC gets CONNECT and TEMPORARY on every new database and CREATE
 * DATABASE never copies grants, so the REVOKE runs every time, not only on create.
 * https://www.postgresql.org/docs/15/ddl-priv.html
 */
export async function ensureDatabase(admin: pg.Pool, name: string, owner: string, marker: string): Promise<'created' | 'exists'> {
  let outcome: 'created' | 'exists' = 'exists'
  const found = await admin.query<{ owner: string }>(
    'SELECT pg_get_userbyid(datdba) AS owner FROM pg_database WHERE datname = $1',
    [name],
  )
  const existing = found.rows[0]
  if (existing && existing.owner !== owner) throw new ForeignDatabaseError(name, existing.owner)
  if (!existing) {
    try {
      // Cannot run inside a transaction block: pool.query autocommits.
      await admin.query(`CREATE DATABASE ${quoteIdent(name)} OWNER ${quoteIdent(owner)}`)
      outcome = 'created'
    } catch (err) {
      if (!['42P04', '23505'].includes((err as { code?: string }).code ?? '')) throw err
    }
  }
  await admin.query(`REVOKE ALL ON DATABASE ${quoteIdent(name)} FROM PUBLIC`)
  await admin.query(`COMMENT ON DATABASE ${quoteIdent(name)} IS ${pg.escapeLiteral(marker)}`)
  return outcome
}

export async function databaseExists(admin: pg.Pool, name: string): Promise<boolean> {
  const found = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])
  return (found.rowCount ?? 0) > 0
}

/**
 * A short-lived admin client on one tenant database. Tenant databases are many
 * and `max_connections` is not: never keep a pool per tenant open.
 */
export async function withTenantClient<T>(clusterUrl: string, database: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: withDatabase(clusterUrl, database), application_name: 'landlord' })
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
  const deadline = Date.now() + 10_000
  for (;;) {
    const left = await admin.query(`SELECT 1 FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()${filter}`, params)
    if (!left.rowCount) return ended.rowCount ?? 0
    if (Date.now() > deadline) throw new Error(`sessions on ${database} did not end within 10 s`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

/** Refuses new connections, then ends the open ones: the database is fenced once this returns. */
export async function fenceDatabase(admin: pg.Pool, database: string): Promise<number> {
  if (!(await databaseExists(admin, database))) return 0
  await admin.query(`ALTER DATABASE ${quoteIdent(database)} ALLOW_CONNECTIONS false`)
  return terminateSessions(admin, database)
}

/** Accepts connections again (for the roles that have CONNECT; PUBLIC stays revoked). */
export async function unfenceDatabase(admin: pg.Pool, database: string): Promise<void> {
  await admin.query(`ALTER DATABASE ${quoteIdent(database)} ALLOW_CONNECTIONS true`)
  await admin.query(`REVOKE ALL ON DATABASE ${quoteIdent(database)} FROM PUBLIC`)
}

export async function acceptsConnections(admin: pg.Pool, database: string): Promise<boolean> {
  const r = await admin.query<{ datallowconn: boolean }>('SELECT datallowconn FROM pg_database WHERE datname = $1', [database])
  return r.rows[0]?.datallowconn ?? false
}

/** DROP DATABASE ... WITH (FORCE) ends the sessions it finds; gone already is fine. */
export async function dropDatabase(admin: pg.Pool, database: string): Promise<boolean> {
  const existed = await databaseExists(admin, database)
  await admin.query(`DROP DATABASE IF EXISTS ${quoteIdent(database)} WITH (FORCE)`)
  return existed
}
