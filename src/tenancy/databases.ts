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
export async function ensureDatabase(admin: pg.Pool, name: string, owner: string): Promise<'created' | 'exists'> {
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
