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
