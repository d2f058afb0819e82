// Tenant schema migrations: TENANT_MIGRATIONS_DIR/NNNN_name.sql, plain SQL,
// applied in order, each in its own transaction, recorded in the tenant
// database's landlord_schema_migrations. The folder is read afresh on every
// run, so a new file needs no restart.
import { createHash } from 'node:crypto'
import { promises as fs } from 'node:fs'
import path from 'node:path'
import type pg from 'pg'
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
 * with the tenant's privileges and no more. Each file runs in its own
 * transaction under an advisory lock, and is recorded in that transaction:
 * safe to run twice and concurrently, and a crash never applies a file twice.
 * Returns the schema version reached (for a dry run, the one it would reach).
 */
export async function migrateTenant(client: pg.Client, migrations: TenantMigration[], opts: MigrateOptions = {}): Promise<number> {
  const target = opts.target ?? Infinity
  const wanted = migrations.filter((m) => m.version <= target)
  if (opts.dryRun) return dryRun(client, migrations, wanted)
  await inTransaction(client, () => ensureLedger(client))
  for (const migration of wanted) {
    await inTransaction(client, () => applyOnce(client, migration))
  }
  return checkLedger(client, migrations)
}

async function dryRun(client: pg.Client, migrations: TenantMigration[], wanted: TenantMigration[]): Promise<number> {
  await client.query('BEGIN')
  try {
    await ensureLedger(client)
    for (const migration of wanted) await applyOnce(client, migration)
    return await checkLedger(client, migrations)
  } catch (err) {
    throw asMigrationError(err)
  } finally {
    await client.query('ROLLBACK').catch(() => {})
  }
}

async function inTransaction(client: pg.Client, fn: () => Promise<void>): Promise<void> {
  await client.query('BEGIN')
  try {
    await fn()
    await client.query('COMMIT')
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {})
    throw asMigrationError(err)
  }
}

function asMigrationError(err: unknown): unknown {
  return err instanceof MigrationError || !isSqlError(err) ? err : new MigrationError((err as Error).message)
}

async function ensureLedger(client: pg.Client): Promise<void> {
  await client.query('SELECT pg_advisory_xact_lock($1)', [LOCK_KEY])
  await client.query(`
    CREATE TABLE IF NOT EXISTS landlord_schema_migrations (
      version integer PRIMARY KEY,
      name text NOT NULL,
      checksum text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`)
}

/** Applies one file and records it, inside the caller's transaction; an applied file is only checked. */
async function applyOnce(client: pg.Client, migration: TenantMigration): Promise<void> {
  const label = `${migration.version}_${migration.name}`
  await client.query('SELECT pg_advisory_xact_lock($1)', [LOCK_KEY])
  const applied = await client.query<{ checksum: string }>('SELECT checksum FROM landlord_schema_migrations WHERE version = $1', [migration.version])
  const row = applied.rows[0]
  if (row) {
    if (row.checksum !== migration.checksum) {
      throw new MigrationError(`migration ${label} was changed after it was applied (checksum differs)`, migration.version)
    }
    return
  }
  const before = await client.query<{ xid: string }>('SELECT txid_current()::text AS xid')
  try {
    await client.query(migration.sql)
  } catch (err) {
    if (!isSqlError(err)) throw err
    throw new MigrationError(`migration ${label} failed: ${(err as Error).message}`, migration.version)
  }
  // A COMMIT or ROLLBACK inside the file ends Landlord's transaction: what
  // follows would no longer be atomic with its record, so it is refused.
  const after = await client.query<{ xid: string | null }>('SELECT txid_current_if_assigned()::text AS xid')
  if (after.rows[0]?.xid !== before.rows[0]?.xid) {
    throw new MigrationError(`migration ${label} ends the transaction itself (COMMIT or ROLLBACK in the file); remove it`, migration.version)
  }
  await client.query('INSERT INTO landlord_schema_migrations (version, name, checksum) VALUES ($1, $2, $3)', [migration.version, migration.name, migration.checksum])
}

/** Every recorded version must be one the folder knows; returns the highest. */
async function checkLedger(client: pg.Client, migrations: TenantMigration[]): Promise<number> {
  const known = new Set(migrations.map((m) => m.version))
  const { rows } = await client.query<{ version: number }>('SELECT version FROM landlord_schema_migrations ORDER BY version')
  const unknown = rows.filter((r) => !known.has(r.version))
  if (unknown.length > 0) {
    throw new MigrationError(`tenant has migrations this folder does not know: ${unknown.map((r) => r.version).join(', ')}`)
  }
  return rows.reduce((max, r) => Math.max(max, r.version), 0)
}
