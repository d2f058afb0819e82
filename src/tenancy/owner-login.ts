// A short-lived login of a tenant's owner role, for work done inside the
// tenant's database (migrations). Landlord never runs it in an admin session
// with SET ROLE: RESET ROLE, from any SQL the session runs (a function the
// tenant owns, say), would make it an admin again. A login that is only a
// member of the owner role can become nothing more than the tenant.
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { withDatabase } from '../db/index.js'
import type { TenantObjects } from './databases.js'
import { createLogin, dropLogin } from './logins.js'

/** How long the login may live if the process dies before dropping it. */
const LOGIN_TTL_MS = 15 * 60_000

/** `<owner>-m<11 hex>`: beside lease roles (`<owner>-<12 hex>`), dropped with the tenant. */
export function ownerLoginName(owner: string): string {
  return `${owner}-m${randomBytes(6).toString('hex').slice(0, 11)}`
}

/**
 * Runs `fn` on a fresh connection to the tenant's database as a new login
 * that is a member of the owner role (and acts as it, so what it creates
 * belongs to the tenant), then drops the login.
 */
export async function withOwnerLogin<T>(
  admin: pg.Pool,
  clusterUrl: string,
  tenant: TenantObjects,
  fn: (client: pg.Client) => Promise<T>,
  opts: { lockTimeoutMs?: number; applicationName?: string } = {},
): Promise<T> {
  const name = ownerLoginName(tenant.owner)
  const password = randomBytes(24).toString('base64url')
  try {
    await createLogin(admin, name, password, new Date(Date.now() + LOGIN_TTL_MS), tenant.owner)
    const url = new URL(withDatabase(clusterUrl, tenant.database))
    url.username = encodeURIComponent(name)
    url.password = encodeURIComponent(password)
    const client = new pg.Client({
      connectionString: url.toString(),
      application_name: opts.applicationName ?? 'landlord-migrate',
      // A lock the tenant holds makes the work fail and retry, not hang.
      options: `-c lock_timeout=${opts.lockTimeoutMs ?? 30_000}`,
    })
    await client.connect()
    try {
      return await fn(client)
    } finally {
      await client.end()
    }
  } finally {
    await dropLogin(admin, name)
  }
}
