// The PostgreSQL database plugin of the fake Vault: one pool per configured
// connection, and the plugin's way of running statements — a transaction,
// "{{key}}" replaced verbatim, split on ";" unless the statement is a block
// with END (plugins/database/postgresql/postgresql.go, sdk/helper/dbtxn,
// sdk/database/helper/connutil).
import pg from 'pg'
import { quoteIdent } from './fake-vault-util.js'

// The plugin's renewal statement when a role names none.
const DEFAULT_RENEW = `ALTER ROLE "{{name}}" VALID UNTIL '{{expiration}}';`

export class PostgresPlugin {
  private pool?: pg.Pool
  private closed = false

  constructor(
    private readonly details: Record<string, unknown>,
    private readonly counter: { statementsRun: number },
  ) {}

  /** verify_connection: a connection is opened at once. */
  async verify(): Promise<void> {
    const client = await this.connection().connect()
    client.release()
  }

  /** NewUser: creation statements in one transaction. */
  newUser(statements: string[], vars: { name: string; password: string; expiration: string }): Promise<void> {
    return this.execute(statements, { ...vars, username: vars.name }, true)
  }

  /** UpdateUser with a new expiration: the role's renew_statements, or ALTER ROLE ... VALID UNTIL. */
  renewUser(statements: string[], name: string, expiration: string): Promise<void> {
    return this.execute(statements.length > 0 ? statements : [DEFAULT_RENEW], { name, username: name, expiration }, false)
  }

  /** DeleteUser: the revocation statements, or the plugin's own revoke-and-drop. */
  deleteUser(statements: string[], name: string): Promise<void> {
    if (statements.length > 0) return this.execute(statements, { name, username: name }, true)
    return this.defaultDeleteUser(name)
  }

  async close(): Promise<void> {
    this.closed = true
    await this.pool?.end().catch(() => {})
  }

  /** defaultDeleteUser: strip what the login was granted in this database, then drop it. */
  private async defaultDeleteUser(username: string): Promise<void> {
    const pool = this.connection()
    const exists = await pool.query<{ exists: boolean }>('SELECT exists (SELECT rolname FROM pg_roles WHERE rolname=$1);', [username])
    if (!exists.rows[0]?.exists) return
    const u = quoteIdent(username)
    const schemas = await pool.query<{ table_schema: string }>('SELECT DISTINCT table_schema FROM information_schema.role_column_grants WHERE grantee=$1;', [username])
    const db = await pool.query<{ current_database: string }>('SELECT current_database();')
    const revocations = [
      ...schemas.rows.flatMap(({ table_schema: s }) => [`REVOKE ALL PRIVILEGES ON ALL TABLES IN SCHEMA ${quoteIdent(s)} FROM ${u};`, `REVOKE USAGE ON SCHEMA ${quoteIdent(s)} FROM ${u};`]),
      `REVOKE ALL PRIVILEGES ON ALL TABLES IN SCHEMA public FROM ${u};`,
      `REVOKE ALL PRIVILEGES ON ALL SEQUENCES IN SCHEMA public FROM ${u};`,
      `REVOKE USAGE ON SCHEMA public FROM ${u};`,
      `REVOKE CONNECT ON DATABASE ${quoteIdent(db.rows[0]?.current_database ?? '')} FROM ${u};`,
    ]
    // Not in a transaction: as much access as possible goes even if one statement fails.
    let last: unknown
    for (const sql of revocations) {
      this.counter.statementsRun += 1
      await pool.query(sql).catch((err: unknown) => (last = err))
    }
    if (last) throw new Error(`could not perform all revocation statements: ${pgMessage(last)}`)
    this.counter.statementsRun += 1
    await pool.query(`DROP ROLE IF EXISTS ${u};`)
  }

  /** Runs statements in one transaction; creation and revocation (not renewal) keep END blocks whole. */
  private async execute(statements: string[], vars: Record<string, string>, multiline: boolean): Promise<void> {
    const client = await this.connection().connect()
    try {
      await client.query('BEGIN')
      for (const stmt of statements) {
        const queries = multiline && containsMultilineStatement(stmt) ? [stmt] : parseArbitraryStringSlice(stmt, ';')
        for (const raw of queries.map((q) => q.trim()).filter((q) => q !== '')) {
          const sql = Object.entries(vars).reduce((text, [k, v]) => text.split(`{{${k}}}`).join(v), raw)
          this.counter.statementsRun += 1
          await client.query(sql)
        }
      }
      await client.query('COMMIT')
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {})
      throw err
    } finally {
      client.release()
    }
  }

  /** The pool (max_open_connections, default 4), opened on first use. */
  private connection(): pg.Pool {
    if (this.closed) throw new Error('the connection was closed (reconfigured, deleted, or the fake Vault stopped)')
    if (!this.pool) {
      const escape = (v: unknown) => encodeURIComponent(typeof v === 'string' ? v : '')
      // connutil: {{username}} and {{password}} in connection_url, URL-escaped.
      const url = String(this.details.connection_url)
        .split('{{username}}')
        .join(escape(this.details.username))
        .split('{{password}}')
        .join(escape(this.details.password))
      const max = Number(this.details.max_open_connections ?? 4)
      this.pool = new pg.Pool({ connectionString: url, max, idleTimeoutMillis: 1000, allowExitOnIdle: true, application_name: 'fake-vault' })
      this.pool.on('error', () => {})
    }
    return this.pool
  }
}

/**
 * The password Go's url.Parse finds in a URL, or "". A templated URL has none:
 * "{" is not allowed in userinfo, so Go refuses to parse it (net/url validUserinfo).
 */
export function urlPassword(raw: string): string {
  const userinfo = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/([^/?#]*)@/.exec(raw)?.[1]
  if (userinfo === undefined || !/^[A-Za-z0-9\-._:~!$&'()*+,;=%@]*$/.test(userinfo)) return ''
  const colon = userinfo.indexOf(':')
  return colon < 0 ? '' : userinfo.slice(colon + 1)
}

/** pgx's wording, which is what Vault's error carries. */
export function pgMessage(err: unknown): string {
  const e = err as { message?: string; code?: string }
  return e.code ? `ERROR: ${e.message} (SQLSTATE ${e.code})` : String(e.message ?? err)
}

/** containsMultilineStatement: END outside quotes means a block that must not be split. */
function containsMultilineStatement(stmt: string): boolean {
  // As in the plugin, only the last quoted literal found is taken out before looking.
  const literals = [...(stmt.match(/(".*?")/g) ?? []), ...(stmt.match(/('.*?')/g) ?? [])]
  const last = literals.at(-1)
  return /\bEND\b/.test(last === undefined ? stmt : stmt.split(last).join(''))
}

/** strutil.ParseArbitraryStringSlice: a JSON list, base64 of one, or `sep`-separated text. */
function parseArbitraryStringSlice(input: string, sep: string): string[] {
  const asJson = (text: string): string[] | undefined => {
    try {
      const parsed: unknown = JSON.parse(text)
      return Array.isArray(parsed) && parsed.every((s) => typeof s === 'string') ? parsed : undefined
    } catch {
      return undefined
    }
  }
  const json = asJson(input)
  if (json) return json
  if (/^[A-Za-z0-9+/]+={0,2}$/.test(input) && input.length % 4 === 0) {
    const decoded = Buffer.from(input, 'base64').toString('utf8')
    return asJson(decoded) ?? decoded.split(sep)
  }
  return input.split(sep)
}
