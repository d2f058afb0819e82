// What the fleet migration tests share: a migrations folder of their own
// (the baseline, then whatever a test writes), and a superuser session on a
// tenant database for what a test plants and checks there.
import { cp, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import pg from 'pg'
import type { Test } from 'tap'
import type { Config } from '../../src/config.js'
import { withDatabase } from '../../src/db/index.js'
import { PG_URL, ROOT } from '../helpers.js'

/** A temporary TENANT_MIGRATIONS_DIR holding the baseline, removed at `t`'s end. */
export async function migrationsDir(t: Test): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'landlord-fleet-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  await cp(path.join(ROOT, 'tenant-migrations', '0001_baseline.sql'), path.join(dir, '0001_baseline.sql'))
  return dir
}

/** Runs `fn` on a superuser session of the tenant `slug`'s database. */
export async function onTenantDb<T>(config: Config, slug: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: withDatabase(PG_URL, `${config.tenantDbPrefix}${slug}`) })
  await client.connect()
  try {
    return await fn(client)
  } finally {
    await client.end()
  }
}

/** The versions in a tenant's landlord_schema_migrations, in order. */
export async function appliedVersions(config: Config, slug: string): Promise<number[]> {
  return onTenantDb(config, slug, async (c) =>
    (await c.query<{ version: number }>('SELECT version FROM landlord_schema_migrations ORDER BY version')).rows.map((r) => r.version),
  )
}

/** Whether the tenant's database has `public.<table>`. */
export async function hasTable(config: Config, slug: string, table: string): Promise<boolean> {
  return onTenantDb(config, slug, async (c) => (await c.query<{ t: string | null }>('SELECT to_regclass($1)::text AS t', [`public.${table}`])).rows[0]?.t !== null)
}
