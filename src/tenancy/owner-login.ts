// A short-lived login of a tenant's owner role, for work done inside the
// tenant's database (migrations). Landlord never runs it in an admin session
// with SET ROLE: RESET ROLE, from any SQL the session runs (a function the
// tenant owns, say), would make it an admin again. A login that is only a
// member of the owner role can become nothing more than the tenant.
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { withDatabase } from '../db/index.js'
import type { TenantObjects } from './databases.js'
import { hasSqlState, SQLSTATE } from '../sqlstate.js'
import { quoteIdent } from './identifiers.js'
import { createLogin, dropLogin } from './logins.js'

/** How long the login may live if the process dies before dropping it. */
const LOGIN_TTL_MS = 15 * 60_000

/**
 * The password is 192 random bits, used once by Landlord itself: key
 * stretching protects guessable passwords and buys nothing here, while 4096
 * PBKDF2 rounds on each side cost milliseconds of CPU per tenant in a fleet run.
 */
const VERIFIER_ITERATIONS = 16

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
  opts: { lockTimeoutMs?: number; statementTimeoutMs?: number; applicationName?: string } = {},
): Promise<T> {
  const name = ownerLoginName(tenant.owner)
  const password = randomBytes(24).toString('base64url')
  try {
    await createLogin(admin, name, password, new Date(Date.now() + LOGIN_TTL_MS), tenant.owner, { defaultRole: false, iterations: VERIFIER_ITERATIONS })
    const url = new URL(withDatabase(clusterUrl, tenant.database))
    url.username = encodeURIComponent(name)
    url.password = encodeURIComponent(password)
    const client = new pg.Client({
      connectionString: url.toString(),
      application_name: opts.applicationName ?? 'landlord-migrate',
      // Acting as the owner from the start (RESET ROLE comes back to it). A
      // lock the tenant holds makes the work fail and retry, not hang; so does
      // a statement that runs too long (a tenant trigger or function can sleep).
      options: `-c role=${tenant.owner} -c lock_timeout=${opts.lockTimeoutMs ?? 30_000} -c statement_timeout=${opts.statementTimeoutMs ?? 0}`,
    })
    await client.connect()
    try {
      return await fn(client)
    } finally {
      await client.end()
    }
  } finally {
    await dropOwnerLogin(admin, name)
  }
}

/**
 * Its one session has just ended, and only Landlord knew its password, so the
 * login is dropped at once. One that came to own objects (the SQL it ran did
 * SET ROLE NONE) is ended instead, and dropped with the tenant.
 */
async function dropOwnerLogin(admin: pg.Pool, name: string): Promise<void> {
  try {
    await admin.query(`DROP ROLE IF EXISTS ${quoteIdent(name)}`)
  } catch (err) {
    if (!hasSqlState(err, SQLSTATE.dependentObjectsStillExist)) throw err
    await dropLogin(admin, name)
  }
}
