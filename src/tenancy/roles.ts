// Roles on a tenant cluster. Each function checks, then acts, and is safe to run twice.
import pg from 'pg'
import { withTenantClient } from './databases.js'
import { hasSqlState, SQLSTATE } from '../sqlstate.js'
import { NotOursError, quoteIdent } from './identifiers.js'


/** The role's marker comment: undefined when the role does not exist, null when it has none. */
export async function roleMarker(admin: pg.Pool, name: string): Promise<string | null | undefined> {
  const r = await admin.query<{ marker: string | null }>(
    "SELECT shobj_description(oid, 'pg_authid') AS marker FROM pg_roles WHERE rolname = $1",
    [name],
  )
  return r.rows[0] ? r.rows[0].marker : undefined
}

/** Creates the tenant's NOLOGIN owner role with its marker, or checks the existing one is ours. */
export async function ensureRole(admin: pg.Pool, name: string, marker: string): Promise<'created' | 'exists'> {
  const existing = await roleMarker(admin, name)
  if (existing === undefined) {
    // Role and marker in one transaction: a crash never leaves an unmarked role behind.
    const client = await admin.connect()
    try {
      await client.query('BEGIN')
      await client.query(`CREATE ROLE ${quoteIdent(name)} NOLOGIN`)
      await client.query(`COMMENT ON ROLE ${quoteIdent(name)} IS ${pg.escapeLiteral(marker)}`)
      await client.query('COMMIT')
      return 'created'
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {})
      // Made meanwhile by a concurrent attempt (two sessions can also race on pg_authid's unique index).
      if (!hasSqlState(err, SQLSTATE.duplicateObject, SQLSTATE.uniqueViolation)) throw err
    } finally {
      client.release()
    }
  }
  const found = existing ?? (await roleMarker(admin, name))
  if (found !== marker) throw new NotOursError(`role ${name} exists but was not made by Landlord for this tenant; refusing to adopt it`)
  return 'exists'
}

export async function roleExists(admin: pg.Pool, name: string): Promise<boolean> {
  const found = await admin.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [name])
  return (found.rowCount ?? 0) > 0
}

/** Every role Landlord made for a tenant: the owner and its `<owner>-...` lease roles. */
export async function tenantRoles(admin: pg.Pool, owner: string): Promise<string[]> {
  const like = `${owner.replace(/[\\_%]/g, (c) => `\\${c}`)}-%`
  const r = await admin.query<{ rolname: string }>('SELECT rolname FROM pg_roles WHERE rolname = $1 OR rolname LIKE $2 ORDER BY rolname', [
    owner,
    like,
  ])
  return r.rows.map((row) => row.rolname)
}

export type RoleDrop = { dropped: true } | { dropped: false; left?: string }

/**
 * Drops a role. DROP OWNED first drops what it owns and revokes what it holds,
 * in each database where it has something (pg_shdepend names them: the admin
 * database, shared objects, and any other database it reached), so nothing
 * the role made anywhere can keep it alive. The tenant database itself is
 * dropped before. Those sessions run no tenant code: only pg_catalog is on
 * their search path, and DROP OWNED calls no function the tenant wrote.
 * A database that accepts no connections (another tenant's, fenced) cannot be
 * cleaned: a role something there still depends on is left, NOLOGIN, and the
 * answer says why, for the caller to report rather than fail.
 * https://www.postgresql.org/docs/15/sql-droprole.html
 */
export async function dropRole(admin: pg.Pool, clusterUrl: string, name: string): Promise<RoleDrop> {
  if (!(await roleExists(admin, name))) return { dropped: false }
  const elsewhere = await admin.query<{ datname: string; datallowconn: boolean }>(
    `SELECT DISTINCT d.datname, d.datallowconn FROM pg_shdepend s JOIN pg_database d ON d.oid = s.dbid
      WHERE s.refclassid = 'pg_authid'::regclass AND s.refobjid = (SELECT oid FROM pg_roles WHERE rolname = $1)
        AND d.datname <> current_database()`,
    [name],
  )
  for (const { datname, datallowconn } of elsewhere.rows) {
    if (!datallowconn) continue
    await withTenantClient(clusterUrl, datname, (client) => client.query(`DROP OWNED BY ${quoteIdent(name)}`))
  }
  await admin.query(`DROP OWNED BY ${quoteIdent(name)}`)
  try {
    await admin.query(`DROP ROLE IF EXISTS ${quoteIdent(name)}`)
  } catch (err) {
    if (!hasSqlState(err, SQLSTATE.dependentObjectsStillExist)) throw err
    await admin.query(`ALTER ROLE ${quoteIdent(name)} NOLOGIN`)
    const closed = elsewhere.rows.filter((d) => !d.datallowconn).map((d) => d.datname)
    return { dropped: false, left: `objects in ${closed.join(', ') || 'another database'} still depend on it` }
  }
  return { dropped: true }
}
