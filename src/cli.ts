#!/usr/bin/env node
// The `landlord` command: `start` (default; API and workers), `api`, `worker`,
// and operator commands.
import { UnreachableError } from './compose.js'
import { ConfigError, loadConfig } from './config.js'
import { closeOnSignals, migrate, migrateSecrets, run, type Mode } from './main.js'
import { VaultError } from './secrets/vault-client.js'
import { LandlordError } from './errors.js'

const USAGE = `usage: landlord [command]

  start     migrate the control plane, then run the API and the workers (default)
  api       run the API only
  worker    run the workers and the outbox relay only
  migrate   create and migrate the control-plane database, then exit
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
  if (!['start', 'api', 'worker'].includes(command)) {
    process.stderr.write(`landlord: unknown command "${command}"\n\n${USAGE}`)
    process.exit(2)
  }
  closeOnSignals(await run(config, command as Mode))
}

main(process.argv.slice(2)).catch(fail)
