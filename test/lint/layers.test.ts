// The layer rules (.dependency-cruiser.mjs) as `npm run lint` applies them: a
// small tree that keeps every rule passes, the same tree with one forbidden
// import planted per rule fails with exactly those imports named, and src/
// passes. In-process and offline: dependency-cruiser only reads files.
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import { cruise, format, type ICruiseResult, type IConfiguration } from 'dependency-cruiser'
import t, { type Test } from 'tap'
import { ROOT } from '../helpers.js'

const { default: config } = (await import(pathToFileURL(path.join(ROOT, '.dependency-cruiser.mjs')).href)) as { default: IConfiguration }

interface Violation {
  rule: string
  from: string
  to: string
}

/** Cruises `src` and `migrations` under `dir` with the lint config; `code` is what `depcruise` would exit with. */
async function check(dir: string): Promise<{ code: number; violations: Violation[] }> {
  const options = { ...config.options, baseDir: dir, validate: true, ruleSet: { forbidden: config.forbidden } }
  const { output } = await cruise(['src', 'migrations'], options, { bustTheCache: true })
  const result = output as ICruiseResult
  const { exitCode } = await format(result, { outputType: 'err' })
  const violations = result.summary.violations.map((v) => ({ rule: v.rule.name, from: v.from, to: v.to }))
  return { code: exitCode, violations }
}

/** Layered as DESIGN.md says, touching each rule's allowed side. */
const CLEAN: Record<string, string> = {
  'src/config.ts': 'export const config = {}\n',
  'src/errors.ts': 'export class LandlordError extends Error {}\n',
  'src/main.ts': "import { compose } from './compose.js'\nexport const run = compose\n",
  'src/cli.ts': "import { run } from './main.js'\nimport { compose } from './compose.js'\nexport const both = [run, compose]\n",
  'src/compose.ts': "import { buildApp } from './api/app.js'\nimport { startWorkers } from './jobs/index.js'\nexport const compose = () => [buildApp, startWorkers]\n",
  'src/api/deps.ts': "import type { Db } from '../db/index.js'\nexport interface ApiDeps { db: Db }\n",
  'src/api/app.ts': "import type { ApiDeps } from './deps.js'\nimport tenants from './tenants.js'\nexport const buildApp = (deps: ApiDeps) => [deps, tenants]\n",
  'src/api/tenants.ts': "import type { ApiDeps } from './deps.js'\nimport { transition } from '../lifecycle/transition.js'\nexport default (deps: ApiDeps) => transition(deps)\n",
  'src/jobs/index.ts': "import { createQueues } from './queues.js'\nimport { fence } from './workers/fence.js'\nexport const startWorkers = () => [createQueues, fence]\n",
  'src/jobs/queues.ts': 'export const createQueues = () => []\n',
  'src/jobs/workers/fence.ts': "import { fenceDatabase } from '../../tenancy/databases.js'\nimport { transition } from '../../lifecycle/transition.js'\nexport const fence = () => [fenceDatabase, transition]\n",
  'src/lifecycle/machine.ts': "import { setup } from 'xstate'\nimport type { TenantEvent } from './events.js'\nexport const machine = setup({}) as unknown as TenantEvent\n",
  'src/lifecycle/events.ts': 'export type TenantEvent = { type: string }\n',
  'src/lifecycle/transition.ts': "import { machine } from './machine.js'\nimport { saveTenant } from '../db/tenants.js'\nexport const transition = (x: unknown) => [machine, saveTenant, x]\n",
  'src/db/index.ts': 'export type Db = object\n',
  'src/db/tenants.ts': "import type { Db } from './index.js'\nimport { quoteIdent } from '../tenancy/identifiers.js'\nimport { LandlordError } from '../errors.js'\nimport type { TenantEvent } from '../lifecycle/events.js'\nexport const saveTenant = (db: Db, e?: TenantEvent) => [db, e, quoteIdent, LandlordError]\n",
  'src/tenancy/identifiers.ts': 'export const quoteIdent = (s: string) => `"${s}"`\n',
  'src/tenancy/roles.ts': "import { quoteIdent } from './identifiers.js'\nexport const ensureRole = () => quoteIdent('r')\n",
  'src/api/docs.ts': "import type { ApiDeps } from './deps.js'\nexport const docs = (deps: ApiDeps) => deps\n",
  'src/tenancy/databases.ts': "import { quoteIdent } from './identifiers.js'\nimport type { Db } from '../db/index.js'\nimport type { Secrets } from '../secrets/backend.js'\nexport const fenceDatabase = (db: Db, s: Secrets) => [quoteIdent, db, s]\n",
  'src/secrets/backend.ts': "import type { Db } from '../db/index.js'\nexport interface Secrets { db: Db }\n",
  'src/webhooks/deliver.ts': "import type { Secrets } from '../secrets/backend.js'\nimport { machine } from '../lifecycle/machine.js'\nexport const deliver = (s: Secrets) => [s, machine]\n",
  'src/fleet/runs.ts': "import type { Db } from '../db/index.js'\nimport { ensureRole } from '../tenancy/roles.js'\nexport const startRun = (db: Db) => [db, ensureRole]\n",
  'migrations/0001_registry.ts': "import type { Kysely } from 'kysely'\nexport async function up(db: Kysely<any>) { return db }\n",
}

/** One forbidden import per rule, most of them type-only (types count too), none closing a circle. */
const PLANTED: Array<[rule: string, file: string, line: string, to: string]> = [
  ['entry-points-only', 'src/api/tenants.ts', "import type { startWorkers } from '../jobs/index.js'", 'src/jobs/index.ts'],
  ['entry-points-only', 'src/api/docs.ts', "import type { buildApp } from './app.js'", 'src/api/app.ts'],
  ['entry-points-only', 'src/config.ts', "import type { run } from './main.js'", 'src/main.ts'],
  ['jobs-not-api', 'src/jobs/workers/fence.ts', "import type { ApiDeps } from '../../api/deps.js'", 'src/api/deps.ts'],
  ['machine-pure', 'src/lifecycle/events.ts', "import { randomUUID } from 'node:crypto'", 'crypto'],
  ['machine-pure', 'src/lifecycle/machine.ts', "import type { Db } from '../db/index.js'", 'src/db/index.ts'],
  ['migrations-standalone', 'migrations/0001_registry.ts', "import type { Db } from '../src/db/index.js'", 'src/db/index.ts'],
  ['db-inward', 'src/db/tenants.ts', "import type { machine } from '../lifecycle/machine.js'", 'src/lifecycle/machine.ts'],
  ['db-inward', 'src/db/index.ts', "import type { ensureRole } from '../tenancy/roles.js'", 'src/tenancy/roles.ts'],
  ['tenancy-inward', 'src/tenancy/databases.ts', "import type { deliver } from '../webhooks/deliver.js'", 'src/webhooks/deliver.ts'],
  ['fleet-inward', 'src/fleet/runs.ts', "import type { createQueues } from '../jobs/queues.js'", 'src/jobs/queues.ts'],
  ['webhooks-secrets-inward', 'src/secrets/backend.ts', "import type { createQueues } from '../jobs/queues.js'", 'src/jobs/queues.ts'],
  ['webhooks-secrets-inward', 'src/webhooks/deliver.ts', "import type { ApiDeps } from '../api/deps.js'", 'src/api/deps.ts'],
]

async function writeTree(t: Test, files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'landlord-layers-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  // xstate and kysely resolve as in the repository.
  await symlink(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'), 'dir')
  for (const [file, text] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(dir, file)), { recursive: true })
    await writeFile(path.join(dir, file), text)
  }
  return dir
}

t.test('a tree that keeps the layers passes, xstate in the machine and type imports of ApiDeps included', async (t) => {
  const { code, violations } = await check(await writeTree(t, CLEAN))
  t.same(violations, [])
  t.equal(code, 0)
})

t.test('each forbidden import planted in that tree fails lint, named with its rule', async (t) => {
  const files = { ...CLEAN }
  for (const [, file, line] of PLANTED) files[file] = `${line}\n${files[file]}`
  // A circle inside one layer, which no other rule forbids.
  files['src/db/a.ts'] = "import { b } from './b.js'\nexport const a = () => b\n"
  files['src/db/b.ts'] = "import { a } from './a.js'\nexport const b = () => a\n"
  const { code, violations } = await check(await writeTree(t, files))
  t.not(code, 0, 'lint fails')
  const key = (v: Violation) => `${v.rule}: ${v.from} → ${v.to}`
  const expected = PLANTED.map(([rule, from, , to]) => key({ rule, from, to }))
  t.same(violations.filter((v) => v.rule !== 'no-circular').map(key).sort(), expected.sort(), 'exactly the planted imports')
  const circles = violations.filter((v) => v.rule === 'no-circular')
  t.ok(circles.length > 0, 'the circle is found')
  t.same(circles.filter((v) => !['src/db/a.ts', 'src/db/b.ts'].includes(v.from)), [], 'and it is the only one')
})

t.test('src/ and migrations/ keep the layers', async (t) => {
  const { code, violations } = await check(ROOT)
  t.same(violations, [])
  t.equal(code, 0)
})
