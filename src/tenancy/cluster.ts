// Closing the tenant cluster to tenant logins. By default PUBLIC has CONNECT on
// every database, `postgres` and `template1` included: a tenant login could
// reach them, and anything it wrote to template1 would be copied into every
// database created from it. Landlord closes the databases that are its
// concern at start; what it cannot close it names.
import pg from 'pg'
import { hasSqlState, SQLSTATE } from '../sqlstate.js'
import { ADMIN_SESSION_LIMITS } from './databases.js'
import { quoteIdent } from './identifiers.js'

/**
 * The admin pool on a tenant cluster, shared by the workers and credential
 * issuance. Its sessions carry ADMIN_SESSION_LIMITS, so a tenant holding a
 * lock makes a statement fail and retry rather than pin a connection; and a
 * request waits at most 10 s for a free connection.
 */
export function openClusterPool(url: string, max = 4): pg.Pool {
  const pool = new pg.Pool({
    connectionString: url,
    max,
    application_name: 'landlord-admin',
    options: ADMIN_SESSION_LIMITS,
    connectionTimeoutMillis: 10_000,
  })
  // As for the control-plane pool: an idle connection the server ended is replaced, not fatal.
  pool.on('error', () => {})
  return pool
}

export interface HardeningReport {
  /** Databases whose CONNECT from PUBLIC this run revoked. */
  closed: string[]
  /** Databases still open to every login: not Landlord's to close, or no privilege to. */
  open: string[]
  /** Of `open`, those Landlord should have closed but could not (lacking the privilege). */
  refused: string[]
}

// One session at a time: concurrent GRANT/REVOKE on one database can fail
// with "tuple concurrently updated".
const LOCK_KEY = 0x6c6c6864 // 'llhd'

/**
 * Revokes CONNECT from PUBLIC on the maintenance databases (`postgres`,
 * `template1`) and on `extra` (the control database when it lives on this
 * cluster). Idempotent: a database already closed is left alone. Returns what
 * it changed and what stays open to every login.
 */
export async function hardenCluster(admin: pg.Pool, extra: string[] = []): Promise<HardeningReport> {
  const ours = new Set(['postgres', 'template1', ...extra])
  const client = await admin.connect()
  try {
    await client.query('SELECT pg_advisory_lock($1)', [LOCK_KEY])
    try {
      const closed: string[] = []
      const refused: string[] = []
      for (const name of await openDatabases(client)) {
        if (!ours.has(name)) continue
        try {
          await client.query(`REVOKE CONNECT, TEMPORARY ON DATABASE ${quoteIdent(name)} FROM PUBLIC`)
        } catch (err) {
          // 42501: neither superuser nor the owner. REVOKE by a non-owner only warns, hence the check below.
          if (!hasSqlState(err, SQLSTATE.insufficientPrivilege)) throw err
        }
        if ((await openDatabases(client)).includes(name)) refused.push(name)
        else closed.push(name)
      }
      return { closed, open: await openDatabases(client), refused }
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [LOCK_KEY])
    }
  } finally {
    client.release()
  }
}

/** Databases any login may connect to (template0 accepts no connections at all). */
async function openDatabases(client: pg.PoolClient): Promise<string[]> {
  const r = await client.query<{ datname: string }>(
    "SELECT datname FROM pg_database WHERE datallowconn AND has_database_privilege('public', oid, 'CONNECT') ORDER BY datname",
  )
  return r.rows.map((row) => row.datname)
}

/** Connections the cluster could still accept: max_connections less the sessions open now (reserved slots aside). */
export async function freeConnections(admin: pg.Pool): Promise<number> {
  const { rows } = await admin.query<{ free: number }>(`
    SELECT current_setting('max_connections')::int
         - current_setting('superuser_reserved_connections')::int
         - (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')::int AS free`)
  return Math.max(0, rows[0]?.free ?? 0)
}
