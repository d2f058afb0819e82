// One test run (`npm test`, or `npx tap <files>`): a control database migrated
// once, which every harness clones, and the ids the run's harnesses took, so
// the leak check at its end looks at this run's names only and never at those
// of another run on the same server. tap's "before" (setup-before.ts) begins
// the run and its "after" (setup-after.ts) ends it. They and every test file
// are children of one tap runner: its pid (our parent's) finds the run.
import { randomBytes } from 'node:crypto'
import { appendFileSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { Redis } from 'ioredis'
import pg from 'pg'
import { quoteIdent } from '../src/tenancy/identifiers.js'

export const PG_URL = process.env.TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'
export const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'

/** What each harness id names: its control database, tenant prefix and queue prefix. */
export const names = (id: string) => ({ control: `landlord_test_${id}`, tenantPrefix: `lt${id}_`, queuePrefix: `landlord-test-${id}` })

export interface TestRun {
  id: string
  /** The migrated control database the harnesses clone; nobody may connect to it. */
  template: string
}

const runDir = path.join(os.tmpdir(), `landlord-test-run-${process.ppid}`)
const runFile = path.join(runDir, 'run.json')
const idsFile = path.join(runDir, 'ids')

let cached: TestRun | null | undefined
/** The run this process belongs to, or undefined when a test file runs without tap's runner. */
export function currentRun(): TestRun | undefined {
  if (cached === undefined) {
    try {
      cached = JSON.parse(readFileSync(runFile, 'utf8')) as TestRun
    } catch {
      cached = null
    }
  }
  return cached ?? undefined
}

/** Where a harness of this run writes its log (scanned for secrets at the end); undefined outside tap's runner. */
export function runLogFile(id: string): string | undefined {
  if (!currentRun()) return undefined
  const dir = path.join(runDir, 'logs')
  mkdirSync(dir, { recursive: true })
  return path.join(dir, `${id}.log`)
}

/**
 * What must never be written to a log: API keys (generated ones and the
 * tests' own), webhook secrets, SCRAM verifiers, Vault tokens, a password
 * field that is not redacted, a URL holding a password.
 */
export const SECRET_PATTERNS: Array<[what: string, pattern: RegExp]> = [
  ['an API key', /landlord_[A-Za-z0-9_-]{43}|test-admin-key-0123456789/],
  ['a webhook secret', /whsec_[A-Za-z0-9+/=]{16,}/],
  ['a SCRAM verifier', /SCRAM-SHA-256\$\d+:/],
  ['a Vault token', /hvs\.[A-Za-z0-9]{20,}/],
  ['a password field', /"password":"(?!\[redacted\])/],
  ['a URL with a password', /[a-z]+:\/\/[^:/@\s"]+:(?!\*\*\*@)[^@\s"/]+@/],
]

/** Lines of this run's harness logs that hold a secret, named by file and line. */
export function secretsInLogs(): string[] {
  const dir = path.join(runDir, 'logs')
  let files: string[]
  try {
    files = readdirSync(dir)
  } catch {
    return []
  }
  const found: string[] = []
  for (const file of files) {
    readFileSync(path.join(dir, file), 'utf8')
      .split('\n')
      .forEach((line, i) => {
        for (const [what, pattern] of SECRET_PATTERNS) if (pattern.test(line)) found.push(`${file}:${i + 1}: ${what}: ${line.slice(0, 200)}`)
      })
  }
  return found
}

/** Adds a harness id to the run's list (one short append, atomic between processes). */
export function recordId(id: string): void {
  if (currentRun()) appendFileSync(idsFile, `${id}\n`)
}

async function withAdmin<T>(fn: (admin: pg.Client) => Promise<T>): Promise<T> {
  const admin = new pg.Client({ connectionString: PG_URL, application_name: 'landlord-test' })
  await admin.connect()
  try {
    return await fn(admin)
  } finally {
    await admin.end()
  }
}

/** tap "before": makes the template, migrated, then closed to every connection. */
export async function beginRun(): Promise<TestRun> {
  const run: TestRun = { id: randomBytes(4).toString('hex'), template: '' }
  run.template = `landlord_test_template_${run.id}`
  const t = quoteIdent(run.template)
  // Loaded here only: the "after" hook, which needs neither, starts faster without kysely.
  const [{ createDb, withDatabase }, { migrateToLatest }] = await Promise.all([import('../src/db/index.js'), import('../src/db/migrate.js')])
  try {
    await withAdmin((admin) => admin.query(`CREATE DATABASE ${t} TEMPLATE template0`))
    const db = createDb(withDatabase(PG_URL, run.template), 1)
    try {
      await migrateToLatest(db)
    } finally {
      await db.destroy()
    }
    // Cloning fails while any session is connected to the template: allow none.
    await withAdmin((admin) => admin.query(`ALTER DATABASE ${t} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false`))
  } catch (err) {
    await dropTemplate(run.template).catch(() => {})
    throw err
  }
  // A directory left by an earlier runner with our runner's pid is stale.
  rmSync(runDir, { recursive: true, force: true })
  mkdirSync(runDir, { recursive: true, mode: 0o700 })
  writeFileSync(idsFile, '')
  writeFileSync(runFile, JSON.stringify(run))
  return run
}

async function dropTemplate(template: string): Promise<void> {
  await withAdmin(async (admin) => {
    const found = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [template])
    if (!found.rowCount) return
    // A template cannot be dropped until unmarked.
    await admin.query(`ALTER DATABASE ${quoteIdent(template)} WITH IS_TEMPLATE false`)
    await admin.query(`DROP DATABASE ${quoteIdent(template)} WITH (FORCE)`)
  })
}

/**
 * Creates the control database `name` as a clone of the run's template, closed
 * to PUBLIC as `landlord start` would make it. Returns false, having created
 * nothing, when there is no run: the caller creates and migrates it then.
 */
export async function cloneControlDatabase(name: string): Promise<boolean> {
  const run = currentRun()
  if (!run) return false
  await withAdmin(async (admin) => {
    // One clone at a time per template, held on the `postgres` database (never on the template).
    await admin.query('SELECT pg_advisory_lock(hashtext($1))', [run.template])
    try {
      await admin.query(`CREATE DATABASE ${quoteIdent(name)} TEMPLATE ${quoteIdent(run.template)}`)
    } finally {
      await admin.query('SELECT pg_advisory_unlock(hashtext($1))', [run.template])
    }
    // CREATE DATABASE does not copy database-level grants.
    await admin.query(`REVOKE ALL ON DATABASE ${quoteIdent(name)} FROM PUBLIC`)
  })
  return true
}

/**
 * tap "after": drops the template, then looks for what this run's harnesses
 * left behind (databases, roles, Redis keys), removes it, and returns a line
 * per leftover. Another run's names are never looked at.
 */
export async function endRun(): Promise<string[]> {
  const run = currentRun()
  if (!run) return [`no test run recorded in ${runDir}: did tap's "before" run?`]
  await dropTemplate(run.template)
  const ids = [...new Set(readFileSync(idsFile, 'utf8').split('\n').filter((id) => id !== ''))]
  const leftovers: string[] = []
  if (ids.length > 0) {
    const patterns = ids.flatMap((id) => {
      const n = names(id)
      return [`${n.control.replace(/_/g, '\\_')}%`, `${n.tenantPrefix.replace(/_/g, '\\_')}%`]
    })
    await withAdmin(async (admin) => {
      const dbs = await admin.query<{ datname: string }>('SELECT datname FROM pg_database WHERE datname LIKE ANY($1)', [patterns])
      for (const { datname } of dbs.rows) {
        leftovers.push(`database ${datname}`)
        await admin.query(`DROP DATABASE IF EXISTS ${quoteIdent(datname)} WITH (FORCE)`)
      }
      const roles = await admin.query<{ rolname: string }>('SELECT rolname FROM pg_roles WHERE rolname LIKE ANY($1)', [patterns])
      for (const { rolname } of roles.rows) {
        leftovers.push(`role ${rolname}`)
        await admin.query(`DROP ROLE IF EXISTS ${quoteIdent(rolname)}`).catch((err: Error) => leftovers.push(`  (not dropped: ${err.message})`))
      }
    })
    leftovers.push(...(await removeRedisKeys(new Set(ids.map((id) => names(id).queuePrefix)))))
  }
  const secrets = secretsInLogs()
  if (secrets.length > 0) leftovers.push(`secrets in the logs:\n${secrets.map((s) => `    ${s}`).join('\n')}`)
  rmSync(runDir, { recursive: true, force: true })
  return leftovers
}

/** Removes the keys under any of `prefixes`; returns a line per prefix that had some. */
async function removeRedisKeys(prefixes: Set<string>): Promise<string[]> {
  const redis = new Redis(REDIS_URL)
  const found = new Map<string, number>()
  try {
    let cursor = '0'
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', 'landlord-test-*', 'COUNT', 1000)
      cursor = next
      const ours = keys.filter((key) => prefixes.has(key.split(':')[0]!))
      for (const key of ours) found.set(key.split(':')[0]!, (found.get(key.split(':')[0]!) ?? 0) + 1)
      if (ours.length > 0) await redis.del(...ours)
    } while (cursor !== '0')
  } finally {
    await redis.quit()
  }
  return [...found].map(([prefix, n]) => `${n} Redis key(s) under ${prefix}:`)
}
