#!/usr/bin/env node
// The `landlord` command: `start` (default; API and workers), `api`, `worker`,
// and operator commands.
import { ConfigError, loadConfig } from './config.js'
import { createLogger } from './log.js'
import { UnreachableError, prepareControlPlane, run, type Mode } from './main.js'

const USAGE = `usage: landlord [command]

  start     migrate the control plane, then run the API and the workers (default)
  api       run the API only
  worker    run the workers and the outbox relay only
  migrate   create and migrate the control-plane database, then exit
  help      show this text
`

function fail(err: unknown): never {
  if (err instanceof ConfigError) process.stderr.write(`landlord: invalid configuration: ${err.message}\n`)
  else if (err instanceof UnreachableError) process.stderr.write(`landlord: ${err.message}\n`)
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
    const db = await prepareControlPlane(config, createLogger(config.logLevel))
    await db.destroy()
    return
  }
  if (!['start', 'api', 'worker'].includes(command)) {
    process.stderr.write(`landlord: unknown command "${command}"\n\n${USAGE}`)
    process.exit(2)
  }
  const shutdown = await run(config, command as Mode)
  let stopping = false
  const stop = (signal: string) => {
    if (stopping) process.exit(1) // a second signal: give up waiting
    stopping = true
    process.stderr.write(`landlord: ${signal} received, shutting down\n`)
    void shutdown().then(() => process.exit(0))
  }
  process.on('SIGTERM', () => stop('SIGTERM'))
  process.on('SIGINT', () => stop('SIGINT'))
}

main(process.argv.slice(2)).catch(fail)
