// Tenant schema migrations: TENANT_MIGRATIONS_DIR/NNNN_name.sql, plain SQL,
// applied in order, each in its own transaction, recorded in the tenant
// database's landlord_schema_migrations. The folder is read afresh on every
// run, so a new file needs no restart.
import { createHash } from 'node:crypto'
import { promises as fs } from 'node:fs'
import path from 'node:path'
import pg from 'pg'
import { isTransientSqlError, sqlState } from '../sqlstate.js'

export interface TenantMigration {
  version: number
  name: string
  sql: string
  checksum: string
}

export class MigrationError extends Error {
  constructor(
    message: string,
    /** The migration that failed, when one did. */
    readonly version: number | null = null,
  ) {
    super(message)
    this.name = 'MigrationError'
  }
}

const FILE = /^(\d{4})_([a-z0-9_]+)\.sql$/

export async function readTenantMigrations(dir: string): Promise<TenantMigration[]> {
  const files = (await fs.readdir(dir)).filter((f) => f.endsWith('.sql')).sort()
  const migrations: TenantMigration[] = []
  for (const file of files) {
    const m = FILE.exec(file)
    if (!m) throw new MigrationError(`${file}: tenant migrations are named NNNN_name.sql`)
    const version = Number(m[1])
    if (migrations.some((x) => x.version === version)) throw new MigrationError(`${file}: version ${version} appears twice`)
    const text = await fs.readFile(path.join(dir, file), 'utf8')
    migrations.push({ version, name: m[2] as string, sql: text, checksum: createHash('sha256').update(text).digest('hex') })
  }
  return migrations
}

/**
 * An error in the migration's SQL itself (permanent), as opposed to a lost
 * connection, a server shutting down or a lock wait that timed out: those are
 * worth a retry.
 */
function isSqlError(err: unknown): boolean {
  return sqlState(err) !== undefined && !isTransientSqlError(err)
}

// One key for every tenant database: the lock is per database anyway.
const LOCK_KEY = 0x6c616e64 // 'land'

export interface MigrateOptions {
  /** Apply up to this version only (default: all). */
  target?: number
  /** Apply everything pending in one transaction and roll it back: what would fail, changing nothing. */
  dryRun?: boolean
}

/**
 * Brings one tenant database to the latest migration (or `target`).
 * `client` must be a login of the tenant's owner role (see withOwnerLogin),
 * never an admin session: the tenant controls what landlord_schema_migrations
 * is (it could be a view calling its own functions), so everything here runs
 * with the tenant's privileges and no more. An advisory lock serialises
 * runners for the whole run; each file runs in its own transaction and is
 * recorded in it: safe to run twice and concurrently, and a crash never
 * applies a file twice. Returns the schema version reached (for a dry run,
 * the one it would reach).
 */
export async function migrateTenant(client: pg.Client, migrations: TenantMigration[], opts: MigrateOptions = {}): Promise<number> {
  const target = opts.target ?? Infinity
  const own = !opts.dryRun
  // Held until the caller ends the session.
  await client.query(`SELECT pg_advisory_lock(${LOCK_KEY})`)
  try {
    if (!own) await client.query('BEGIN')
    try {
      const ledger = await readLedger(client)
      // A tenant ahead of the folder (it was rolled back, or is another app's) is left untouched.
      const known = new Set(migrations.map((m) => m.version))
      const unknown = [...ledger.keys()].filter((v) => !known.has(v)).sort((a, b) => a - b)
      if (unknown.length > 0) throw new MigrationError(`tenant has migrations this folder does not know: ${unknown.join(', ')}`)
      for (const migration of migrations) {
        if (migration.version > target) break
        const applied = ledger.get(migration.version)
        if (applied === undefined) {
          await applyFile(client, migration, own)
          ledger.set(migration.version, migration.checksum)
        } else if (applied !== migration.checksum) {
          throw new MigrationError(`migration ${label(migration)} was changed after it was applied (checksum differs)`, migration.version)
        }
      }
      return Math.max(0, ...ledger.keys())
    } finally {
      // A dry run's one transaction is always rolled back.
      if (!own) await client.query('ROLLBACK').catch(() => {})
    }
  } catch (err) {
    throw err instanceof MigrationError || !isSqlError(err) ? err : new MigrationError((err as Error).message)
  }
}

const label = (m: TenantMigration) => `${m.version}_${m.name}`

/** The ledger (created when missing): version → checksum. */
async function readLedger(client: pg.Client): Promise<Map<number, string>> {
  const results = (await client.query(`
    CREATE TABLE IF NOT EXISTS landlord_schema_migrations (
      version integer PRIMARY KEY,
      name text NOT NULL,
      checksum text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now()
    );
    SELECT version, checksum FROM landlord_schema_migrations`)) as unknown as Array<pg.QueryResult<{ version: number; checksum: string }>>
  return new Map(results[1]!.rows.map((r) => [r.version, r.checksum]))
}

/** Applies one file and records it, in a transaction of its own (`own`) or the caller's. */
async function applyFile(client: pg.Client, migration: TenantMigration, own: boolean): Promise<void> {
  const opened = (await client.query(own ? 'BEGIN; SELECT txid_current()::text AS xid' : 'SELECT txid_current()::text AS xid')) as unknown
  const before = (own ? (opened as Array<pg.QueryResult<{ xid: string }>>)[1]! : (opened as pg.QueryResult<{ xid: string }>)).rows[0]?.xid
  try {
    try {
      await client.query(migration.sql)
    } catch (err) {
      if (!isSqlError(err)) throw err
      throw new MigrationError(`migration ${label(migration)} failed: ${(err as Error).message}`, migration.version)
    }
    // Recorded only if the transaction is still the one opened above: a
    // COMMIT or ROLLBACK inside the file ends it, and what followed would no
    // longer be atomic with its record, so that file is refused. The values
    // were checked by readTenantMigrations (digits, [a-z0-9_], hex) and are
    // inlined, so the record and the commit take one round trip.
    const record =
      `INSERT INTO landlord_schema_migrations (version, name, checksum) ` +
      `SELECT ${migration.version}, ${pg.escapeLiteral(migration.name)}, ${pg.escapeLiteral(migration.checksum)} ` +
      `WHERE txid_current_if_assigned()::text = ${pg.escapeLiteral(before ?? '')}`
    const done = (await client.query(own ? `${record}; COMMIT` : record)) as unknown
    const inserted = own ? (done as pg.QueryResult[])[0]!.rowCount : (done as pg.QueryResult).rowCount
    if (inserted !== 1) {
      throw new MigrationError(`migration ${label(migration)} ends the transaction itself (COMMIT or ROLLBACK in the file); remove it`, migration.version)
    }
  } catch (err) {
    if (own) await client.query('ROLLBACK').catch(() => {})
    throw err
  }
}
