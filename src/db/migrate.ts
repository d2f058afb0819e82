// Creates the control-plane database when missing and brings its schema to the
// latest migration in migrations/.
import { promises as fs } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { FileMigrationProvider, Migrator, type MigrationResultSet } from 'kysely'
import pg from 'pg'
import type { Db } from './index.js'
import { databaseName, withDatabase } from './index.js'
import { hasSqlState, SQLSTATE } from '../sqlstate.js'
import { quoteIdent } from '../tenancy/identifiers.js'

// Works from src/ under tsx and from dist/src/ when compiled.
const here = path.dirname(fileURLToPath(import.meta.url))
const candidates = [path.resolve(here, '..', '..', 'migrations'), path.resolve(here, '..', '..', '..', 'migrations')]

async function migrationFolder(): Promise<string> {
  for (const dir of candidates) {
    const files = await fs.readdir(dir).catch(() => [])
    if (files.some((f) => /^\d{4}_.*\.(ts|js)$/.test(f) && !f.endsWith('.d.ts'))) return dir
  }
  throw new Error(`no control-plane migrations found in ${candidates.join(' or ')}`)
}

/**
 * CREATE DATABASE for the control plane if it does not exist yet (safe to
 * race). From template0, which no login can have written to, and closed to
 * PUBLIC: tenant logins on the same server must not reach it.
 */
export async function ensureControlDatabase(url: string): Promise<boolean> {
  const name = databaseName(url)
  const client = new pg.Client({ connectionString: withDatabase(url, 'postgres') })
  await client.connect()
  try {
    const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])
    if (found.rowCount) return false
    await client.query(`CREATE DATABASE ${quoteIdent(name)} TEMPLATE template0`)
    await client.query(`REVOKE ALL ON DATABASE ${quoteIdent(name)} FROM PUBLIC`)
    return true
  } catch (err) {
    // Created meanwhile by another process starting at the same time.
    if (hasSqlState(err, SQLSTATE.duplicateDatabase, SQLSTATE.uniqueViolation)) return false
    throw err
  } finally {
    await client.end()
  }
}

export async function migrateToLatest(db: Db): Promise<MigrationResultSet> {
  const migrator = new Migrator({
    db,
    provider: new FileMigrationProvider({ fs, path, migrationFolder: await migrationFolder() }),
  })
  const result = await migrator.migrateToLatest()
  if (result.error) {
    const failed = result.results?.find((r) => r.status === 'Error')
    const cause = result.error instanceof Error ? result.error : new Error(JSON.stringify(result.error))
    throw new Error(`control-plane migration ${failed?.migrationName ?? '(unknown)'} failed: ${cause.message}`, { cause })
  }
  return result
}
