// Login roles of a tenant: members of its owner role that act as it, with a
// SCRAM verifier computed here (the password never reaches the server or its
// logs) and VALID UNTIL. Leases and migration logins are both made and ended here.
import pg from 'pg'
import { scramVerifier } from '../secrets/crypto.js'
import { hasSqlState, SQLSTATE } from '../sqlstate.js'
import { quoteIdent } from './identifiers.js'

export interface LoginOptions {
  /**
   * Make `owner` the login's default role (ALTER ROLE ... SET role), for
   * clients that connect however they like (default true). A caller that
   * connects itself passes `-c role=<owner>` at connection start instead,
   * with the same effect (RESET ROLE goes back to the owner) and one
   * statement less.
   */
  defaultRole?: boolean
  /** PBKDF2 iterations of the SCRAM verifier (default 4096, as Postgres). */
  iterations?: number
}

/** Creates `name` as a login of `owner`, valid until `expires`; what it creates belongs to `owner`. */
export async function createLogin(admin: pg.Pool, name: string, password: string, expires: Date, owner: string, opts: LoginOptions = {}): Promise<void> {
  const role = quoteIdent(name)
  await admin.query(
    `CREATE ROLE ${role} LOGIN PASSWORD ${pg.escapeLiteral(scramVerifier(password, undefined, opts.iterations))} ` +
      `VALID UNTIL ${pg.escapeLiteral(expires.toISOString())} IN ROLE ${quoteIdent(owner)}`,
  )
  if (opts.defaultRole ?? true) await admin.query(`ALTER ROLE ${role} SET role = ${pg.escapeLiteral(owner)}`)
}

/**
 * Makes a login NOLOGIN with no session left. Its sessions end first: one of
 * them may hold the role's own catalog row (`ALTER ROLE self ...` in an open
 * transaction), which would make NOLOGIN wait until lock_timeout; a session
 * it opens again before NOLOGIN lands is ended on the next round. False when
 * the role is gone.
 */
export async function endLogin(admin: pg.Pool, name: string, rounds = 5): Promise<boolean> {
  for (let round = 1; ; round++) {
    await terminate(admin, name)
    try {
      await admin.query(`ALTER ROLE ${quoteIdent(name)} NOLOGIN`)
      break
    } catch (err) {
      if (hasSqlState(err, SQLSTATE.undefinedObject)) return false
      if (!hasSqlState(err, SQLSTATE.lockNotAvailable) || round >= rounds) throw err
    }
  }
  await terminate(admin, name)
  return true
}

/**
 * Ends a login and drops it. A login that came to own objects (SQL it ran did
 * SET ROLE NONE) cannot be dropped yet: it stays NOLOGIN until the tenant's
 * wipe, which drops every role of the tenant (`kept`).
 */
export async function dropLogin(admin: pg.Pool, name: string): Promise<'dropped' | 'gone' | 'kept'> {
  if (!(await endLogin(admin, name))) return 'gone'
  try {
    await admin.query(`DROP ROLE IF EXISTS ${quoteIdent(name)}`)
    return 'dropped'
  } catch (err) {
    if (!hasSqlState(err, SQLSTATE.dependentObjectsStillExist)) throw err
    return 'kept'
  }
}

async function terminate(admin: pg.Pool, name: string): Promise<void> {
  await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1', [name])
}
