#!/usr/bin/env node
// The `landlord` command: `start` (default; API and workers), `api`, `worker`,
// and operator commands.
import { UnreachableError } from './compose.js'
import { ConfigError, loadConfig } from './config.js'
import { parseArgs } from 'node:util'
import { SingleBar } from 'cli-progress'
import { createKey, keysOf, listPrincipals, revokePrincipalKey } from './access/principals.js'
import { verifyAudit } from './db/audit.js'
import { closeOnSignals, migrate, migrateFleet, migrateSecrets, run, withControlPlane, type FleetProgress, type Mode } from './main.js'
import { VaultError } from './secrets/vault-client.js'
import { LandlordError } from './errors.js'

const USAGE = `usage: landlord [command]

  start     migrate the control plane, then run the API and the workers (default)
  api       run the API only
  worker    run the workers and the outbox relay only
  migrate   create and migrate the control-plane database, then exit
  migrate-fleet [--dry-run] [--tenants a,b] [--plan P] [--target N]
                [--concurrency N] [--canary N] [--on-error continue|stop] [--json]
            migrate every tenant (or those chosen) to the tenant migrations
            folder's head (or --target), with this process's workers; shows
            progress and a summary, exits 1 if any tenant failed. Ctrl-C stops
            scheduling; tenants already migrating finish
  principals list
            every principal, its scopes and whether it may act on every tenant
  keys create <principal> [--name N] [--expires-at ISO-8601]
            a new API key for the principal, printed once
  keys list <principal>
            its keys: ids, names, last use, expiry (never the keys)
  keys revoke <principal> <key id>
            revoke a key, at once
  audit verify
            walk the audit trail's hash chain; exits 1 naming the first bad row
  secrets migrate --to vault [--json]
            move every tenant from the local secrets backend to Vault (run with
            SECRETS_BACKEND=vault and the old LANDLORD_MASTER_KEY); idempotent
  help      show this text
`

function fail(err: unknown): never {
  if (err instanceof ConfigError) process.stderr.write(`landlord: invalid configuration: ${err.message}\n`)
  // Failures that explain themselves in one line: no stack trace.
  else if (err instanceof UnreachableError || err instanceof VaultError || err instanceof LandlordError) process.stderr.write(`landlord: ${err.message}\n`)
  else process.stderr.write(`landlord: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`)
  process.exit(1)
}

async function main(argv: string[]): Promise<void> {
  const command = argv[0] ?? 'start'
  if (command === 'help' || command === '--help' || command === '-h') {
    process.stdout.write(USAGE)
    return
  }
  const config = loadConfig()
  if (command === 'migrate') {
    await migrate(config)
    return
  }
  if (command === 'secrets') {
    if (argv[1] !== 'migrate' || argv[2] !== '--to' || argv[3] !== 'vault') {
      process.stderr.write(`landlord: expected "secrets migrate --to vault"\n\n${USAGE}`)
      process.exit(2)
    }
    const json = argv.includes('--json')
    const result = await migrateSecrets(config, (done, total, slug) => {
      if (!json) process.stderr.write(`\r[${'#'.repeat(Math.round((done / total) * 30)).padEnd(30)}] ${done}/${total} ${slug.padEnd(30)}`)
    })
    if (json) process.stdout.write(`${JSON.stringify(result)}\n`)
    else {
      process.stderr.write('\n')
      process.stdout.write(`tenants: ${result.total}  moved: ${result.moved}  already in Vault: ${result.already}  without a key: ${result.withoutKey}\n`)
    }
    return
  }
  if (command === 'audit') {
    if (argv[1] !== 'verify') usage('expected "audit verify"')
    const report = await withControlPlane(config, (db) => verifyAudit(db))
    if (report.broken) {
      process.stderr.write(`landlord: audit chain broken at row ${report.broken.seq}: ${report.broken.reason}\n`)
      process.exitCode = 1
    } else process.stdout.write(`audit chain intact: ${report.rows} rows\n`)
    return
  }
  if (command === 'principals') {
    if (argv[1] !== 'list') usage('expected "principals list"')
    const rows = await withControlPlane(config, (db) => listPrincipals(db))
    process.stdout.write(table(['NAME', 'SCOPES', 'ALL TENANTS'], rows.map((p) => [p.name, p.scopes.join(','), p.all_tenants ? 'yes' : 'no'])))
    return
  }
  if (command === 'keys') {
    await keysCommand(config, argv.slice(1))
    return
  }
  if (command === 'migrate-fleet') {
    process.exitCode = await migrateFleetCommand(config, argv.slice(1))
    return
  }
  if (!['start', 'api', 'worker'].includes(command)) {
    process.stderr.write(`landlord: unknown command "${command}"\n\n${USAGE}`)
    process.exit(2)
  }
  closeOnSignals(await run(config, command as Mode))
}

/** Columns padded to their widest cell. */
function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd()
  return `${[line(head), ...rows.map(line)].join('\n')}\n`
}

async function keysCommand(config: ReturnType<typeof loadConfig>, args: string[]): Promise<void> {
  const [sub, principal, ...rest] = args
  if (!principal || !['create', 'list', 'revoke'].includes(sub ?? '')) usage('expected "keys create|list|revoke <principal> ..."')
  if (sub === 'create') {
    let values
    try {
      ;({ values } = parseArgs({ args: rest, options: { name: { type: 'string' }, 'expires-at': { type: 'string' } } }))
    } catch (err) {
      usage((err as Error).message)
    }
    const expires = values['expires-at']
    if (expires !== undefined && Number.isNaN(Date.parse(expires))) usage(`--expires-at: expected an ISO 8601 date, got "${expires}"`)
    const k = await withControlPlane(config, (db) => createKey(db, principal, { name: values.name, expires_at: expires }))
    // The key goes to stdout alone on its line, for scripts; it is never shown again.
    process.stderr.write(`key ${k.id} for ${principal}${k.expires_at ? `, expires ${k.expires_at.toISOString()}` : ''}; it is shown only now:\n`)
    process.stdout.write(`${k.key}\n`)
  } else if (sub === 'list') {
    const keys = await withControlPlane(config, (db) => keysOf(db, principal))
    const when = (d: Date | null) => d?.toISOString() ?? '-'
    process.stdout.write(table(['ID', 'NAME', 'CREATED', 'LAST USED', 'EXPIRES', 'REVOKED'], keys.map((k) => [k.id, k.name ?? '-', when(k.created_at), when(k.last_used_at), when(k.expires_at), when(k.revoked_at)])))
  } else {
    const keyId = rest[0]
    if (!keyId) usage('expected "keys revoke <principal> <key id>"')
    await withControlPlane(config, (db) => revokePrincipalKey(db, principal, keyId))
    process.stdout.write(`key ${keyId} of ${principal} revoked\n`)
  }
}

/** Usage errors exit 2, like the other commands'. */
function usage(message: string): never {
  process.stderr.write(`landlord: ${message}\n\n${USAGE}`)
  process.exit(2)
}

function count(raw: string | undefined, flag: string, min: number): number | undefined {
  if (raw === undefined) return undefined
  if (!/^\d+$/.test(raw) || Number(raw) < min) usage(`${flag}: expected an integer of at least ${min}, got "${raw}"`)
  return Number(raw)
}

async function migrateFleetCommand(config: ReturnType<typeof loadConfig>, args: string[]): Promise<number> {
  let values
  try {
    ;({ values } = parseArgs({
      args,
      options: {
        'dry-run': { type: 'boolean' },
        tenants: { type: 'string' },
        plan: { type: 'string' },
        target: { type: 'string' },
        concurrency: { type: 'string' },
        canary: { type: 'string' },
        'on-error': { type: 'string' },
        json: { type: 'boolean' },
      },
    }))
  } catch (err) {
    usage((err as Error).message)
  }
  const onError = values['on-error']
  if (onError !== undefined && onError !== 'continue' && onError !== 'stop') usage(`--on-error: expected continue or stop, got "${onError}"`)
  const on_error: 'continue' | 'stop' | undefined = onError
  const request = {
    dry_run: values['dry-run'],
    tenants: values.tenants?.split(',').map((s) => s.trim()).filter(Boolean),
    plan: values.plan,
    target_version: count(values.target, '--target', 1),
    concurrency: count(values.concurrency, '--concurrency', 1),
    canary: count(values.canary, '--canary', 0),
    on_error,
  }
  const json = values.json ?? false
  // Drawn on a terminal only (cli-progress stays quiet on a pipe); the summary always follows.
  const bar = new SingleBar({
    stream: process.stderr,
    format: '{bar} {value}/{total} tenants | succeeded {succeeded} failed {failed} skipped {skipped} deferred {deferred}',
    hideCursor: true,
  })
  let started = false
  const { id, cancel, done } = await migrateFleet(config, request, ({ counts }) => {
    if (json) return
    const total = Object.values(counts).reduce((a, b) => a + b, 0)
    const finished = counts.succeeded + counts.failed + counts.skipped + counts.deferred
    if (!started) bar.start(total, finished, counts)
    else bar.update(finished, counts)
    started = true
  })
  process.once('SIGINT', () => {
    process.stderr.write('\nlandlord: cancelling; tenants already migrating finish\n')
    void cancel()
  })
  const { run, counts, failures } = await done
  if (started) bar.stop()
  const failed = counts.failed > 0 || run.status === 'stopped' || run.status === 'cancelled'
  if (json) {
    process.stdout.write(`${JSON.stringify({ id, status: run.status, target_version: run.target_version, dry_run: run.dry_run, ...counts, failures: failures.map((f) => ({ tenant: f.slug, version: f.failed_version, error: f.error })) })}\n`)
    return failed ? 1 : 0
  }
  process.stdout.write(summary({ run, counts, failures }))
  return failed ? 1 : 0
}

function summary({ run, counts, failures }: FleetProgress): string {
  const lines = [
    `fleet migration ${run.id}${run.dry_run ? ' (dry run)' : ''}: ${run.status}, target version ${run.target_version}${run.stop_reason ? ` (${run.stop_reason})` : ''}`,
    '',
  ]
  const rows: Array<[string, number]> = [
    ['succeeded', counts.succeeded],
    ['failed', counts.failed],
    ['skipped', counts.skipped],
    ['deferred', counts.deferred],
    ['not started', counts.pending + counts.queued + counts.running],
  ]
  for (const [label, n] of rows) lines.push(`  ${label.padEnd(12)} ${String(n).padStart(6)}`)
  if (failures.length > 0) {
    const width = Math.max(6, ...failures.map((f) => f.slug.length))
    lines.push('', `  ${'TENANT'.padEnd(width)}  VERSION  ERROR`)
    for (const f of failures) lines.push(`  ${f.slug.padEnd(width)}  ${String(f.failed_version ?? '-').padEnd(7)}  ${f.error ?? ''}`)
  }
  return `${lines.join('\n')}\n`
}

main(process.argv.slice(2)).catch(fail)
