// Roles on a tenant cluster. Each function checks, then acts, and is safe to run twice.
import type pg from 'pg'
import { quoteIdent } from './identifiers.js'

// 42710 duplicate_object; 23505 when two sessions race on pg_authid's unique index.
const ALREADY = new Set(['42710', '23505'])

/** Creates a NOLOGIN role unless it exists. */
export async function ensureRole(admin: pg.Pool, name: string): Promise<'created' | 'exists'> {
  const found = await admin.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [name])
  if (found.rowCount) return 'exists'
  try {
    await admin.query(`CREATE ROLE ${quoteIdent(name)} NOLOGIN`)
    return 'created'
  } catch (err) {
    if (ALREADY.has((err as { code?: string }).code ?? '')) return 'exists'
    throw err
  }
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

/**
 * Drops a role. DROP OWNED first revokes what it holds on shared objects
 * (databases) and drops what it owns in the admin database; the tenant
 * database itself must be gone or cleaned before.
 * https://www.postgresql.org/docs/15/sql-droprole.html
 */
export async function dropRole(admin: pg.Pool, name: string): Promise<boolean> {
  if (!(await roleExists(admin, name))) return false
  await admin.query(`DROP OWNED BY ${quoteIdent(name)}`)
  await admin.query(`DROP ROLE IF EXISTS ${quoteIdent(name)}`)
  return true
}
