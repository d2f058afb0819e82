// The control-plane kysely instance over a pg pool.
import { Kysely, PostgresDialect, sql, type RawBuilder } from 'kysely'
import pg from 'pg'
import type { Database } from './schema.js'

export type Db = Kysely<Database>

export function createDb(connectionString: string, max = 10): Db {
  const pool = new pg.Pool({ connectionString, max, application_name: 'landlord' })
  // An idle connection the server ended (a restart, a failover) is dropped
  // from the pool and replaced on the next query; unheard, the event would
  // crash the process. https://node-postgres.com/apis/pool#error
  pool.on('error', () => {})
  return new Kysely<Database>({ dialect: new PostgresDialect({ pool }) })
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/** Whether `s` is a uuid: anything else can never match a uuid column (and must not reach one as a parameter). */
export function isUuid(s: string): boolean {
  return UUID.test(s)
}

/** The URL without its password, for messages and logs. */
export function redactUrl(raw: string): string {
  try {
    const u = new URL(raw)
    if (u.password) u.password = '***'
    return u.toString()
  } catch {
    return '(unparseable URL)'
  }
}

/** Same server, another database: used to reach `postgres` for CREATE DATABASE. */
export function withDatabase(raw: string, database: string): string {
  const u = new URL(raw)
  u.pathname = `/${encodeURIComponent(database)}`
  return u.toString()
}

export function databaseName(raw: string): string {
  return decodeURIComponent(new URL(raw).pathname.slice(1))
}

/**
 * Which tenants a principal may see: every tenant (`all`) less `denied`, or
 * only `granted` less `denied`. Undefined where a caller sees everything.
 */
export interface TenantVisibility {
  all: boolean
  granted: readonly string[]
  denied: readonly string[]
}

/** Granted every tenant with no exception: what fleet-wide acts need. */
export function seesEveryTenant(v: TenantVisibility): boolean {
  return v.all && v.denied.length === 0
}

/**
 * A condition on `column` (a tenant id) that keeps what `v` may see: a denial
 * beats a grant. A row of no tenant (a fleet event, a request that named
 * none) is kept when `noTenant` says so.
 */
export function visibleTenant(column: string, v: TenantVisibility, noTenant: boolean): RawBuilder<boolean> {
  const ref = sql.ref(column)
  return sql<boolean>`(CASE WHEN ${ref} IS NULL THEN ${noTenant}
    ELSE ${ref} <> ALL(${[...v.denied]}::uuid[]) AND (${v.all} OR ${ref} = ANY(${[...v.granted]}::uuid[])) END)`
}
