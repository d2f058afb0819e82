// What the benchmarks share: timing, percentiles and cleaning up what they made.
import { Redis } from 'ioredis'
import type pg from 'pg'
import { quoteIdent } from '../src/tenancy/identifiers.js'

/** Seconds since `fromMs` (a performance.now() reading). */
export const seconds = (fromMs: number) => (performance.now() - fromMs) / 1000

/** Nearest-rank percentile of an ascending list. */
export const percentile = (sorted: number[], p: number) => sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN

export async function deleteKeys(redisUrl: string, pattern: string): Promise<void> {
  const redis = new Redis(redisUrl)
  try {
    let cursor = '0'
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 500)
      cursor = next
      if (keys.length > 0) await redis.del(...keys)
    } while (cursor !== '0')
  } finally {
    await redis.quit()
  }
}

/** Drops every database and role named with `prefix`. */
export async function dropPrefixed(admin: pg.Client, prefix: string): Promise<void> {
  const like = `${prefix.replace(/_/g, '\\_')}%`
  const dbs = await admin.query<{ datname: string }>('SELECT datname FROM pg_database WHERE datname LIKE $1', [like])
  for (const { datname } of dbs.rows) await admin.query(`DROP DATABASE IF EXISTS ${quoteIdent(datname)} WITH (FORCE)`)
  const roles = await admin.query<{ rolname: string }>('SELECT rolname FROM pg_roles WHERE rolname LIKE $1', [like])
  for (const { rolname } of roles.rows) await admin.query(`DROP ROLE IF EXISTS ${quoteIdent(rolname)}`)
}

