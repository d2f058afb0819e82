// Landlord as a process. `start` runs the API and the workers in one process;
// `api` and `worker` run one side each, for scale-out. The pieces come from
// compose.ts; this file listens, serves a worker's metrics, and on SIGTERM or
// SIGINT stops taking requests, lets jobs in flight finish and closes the pools.
import closeWithGrace from 'close-with-grace'
import type { FastifyInstance } from 'fastify'
import { compose, prepareControlPlane } from './compose.js'
import type { Config } from './config.js'
import { createDb, type Db } from './db/index.js'
import { serveWorkerMetrics } from './jobs/metrics-server.js'
import { createLogger } from './log.js'
import { cancelFleetMigration, describeFleetMigration, startFleetMigration, type FleetRequest } from './fleet/runs.js'
import { pollUntil } from './poll.js'
import { migrateToVault, type SecretsMigration } from './secrets/migrate.js'

export type Mode = 'start' | 'api' | 'worker'

/** Printed once, never logged: only its hash is stored. */
function printAdminKey(key: string): void {
  process.stdout.write(
    `\nNo API key was configured, so Landlord made one. It is shown only now; keep it:\n\n  ${key}\n\n` +
      'Set LANDLORD_ADMIN_KEY to choose your own.\n\n',
  )
}

/** `landlord migrate`: creates and migrates the control database, then closes its pool. */
export async function migrate(config: Config): Promise<void> {
  const db = createDb(config.databaseUrl)
  try {
    await prepareControlPlane(config, db, createLogger(config.logLevel))
  } finally {
    await db.destroy()
  }
}

/**
 * `landlord secrets migrate --to vault`: moves every tenant provisioned under
 * the local backend to Vault (secrets/migrate.ts). Needs SECRETS_BACKEND=vault
 * and the master key the local backend used.
 */
export async function migrateSecrets(config: Config, onProgress: (done: number, total: number, slug: string) => void): Promise<SecretsMigration> {
  const landlord = await compose(config, { api: false, workers: false })
  try {
    return await migrateToVault(landlord.db, landlord.secrets, landlord.masterKey, onProgress)
  } finally {
    await landlord.close()
  }
}

/** Runs `fn` on the control-plane database alone (operator commands that need nothing else). */
export async function withControlPlane<T>(config: Config, fn: (db: Db) => Promise<T>): Promise<T> {
  const db = createDb(config.databaseUrl)
  try {
    return await fn(db)
  } finally {
    await db.destroy()
  }
}

export type FleetProgress = Awaited<ReturnType<typeof describeFleetMigration>>

/**
 * `landlord migrate-fleet`: starts a fleet migration and works on it with
 * this process's own workers (running instances help), reporting progress
 * until it is over. `cancel()` (Ctrl-C) stops scheduling; tenants already
 * migrating finish.
 */
export async function migrateFleet(
  config: Config,
  request: FleetRequest,
  onProgress: (progress: FleetProgress) => void,
): Promise<{ id: string; cancel: () => Promise<void>; done: Promise<FleetProgress> }> {
  const landlord = await compose(config, { api: false, workers: true })
  try {
    const run = await startFleetMigration(landlord, request, 'cli')
    const cancel = async () => void (await cancelFleetMigration(landlord.db, run.id).catch(() => {}))
    const done = (async () => {
      try {
        const last = await pollUntil(
          async () => {
            const progress = await describeFleetMigration(landlord.db, run.id)
            onProgress(progress)
            return progress.run.finished_at ? progress : undefined
          },
          { timeoutMs: Infinity, intervalMs: 250 },
        )
        return last!
      } finally {
        await landlord.close()
      }
    })()
    return { id: run.id, cancel, done }
  } catch (err) {
    await landlord.close()
    throw err
  }
}

/** Starts the pieces `mode` runs; the returned function stops them (it never throws: failures are logged). */
export async function run(config: Config, mode: Mode): Promise<() => Promise<void>> {
  const landlord = await compose(config, {
    api: mode !== 'worker',
    workers: mode !== 'api',
    onAdminKeyGenerated: printAdminKey,
  })
  const { app, log } = landlord
  let metrics: FastifyInstance | undefined
  const close = async () => {
    // A worker has no app: its metrics listener goes first, as the app would.
    await metrics?.close().catch((err: unknown) => log.error({ err }, 'shutdown step failed'))
    await landlord.close().catch(() => {}) // each failed step is logged by close()
  }
  try {
    if (landlord.workers) log.info({ concurrency: config.workerConcurrency }, 'workers started')
    if (mode === 'worker' && config.metricsPort !== undefined) {
      metrics = await serveWorkerMetrics(config.host, config.metricsPort)
      log.info({ port: config.metricsPort }, 'worker metrics served')
    }
    if (app) await app.listen({ port: config.port, host: config.host })
  } catch (err) {
    await close()
    throw err
  }
  return close
}

/**
 * SIGTERM or SIGINT runs `close`, then exits 0; a second signal exits 1 at
 * once. Other signals and uncaught errors keep Node's defaults: DESIGN.md
 * promises a graceful stop on these two only.
 */
export function closeOnSignals(close: () => Promise<void>): void {
  closeWithGrace(
    {
      // No deadline: a job in flight is let finish, as an orchestrator's own grace period decides.
      delay: false,
      logger: false,
      skip: ['SIGHUP', 'SIGQUIT', 'SIGILL', 'SIGTRAP', 'SIGABRT', 'SIGBUS', 'SIGFPE', 'SIGSEGV', 'SIGUSR2', 'uncaughtException', 'unhandledRejection', 'beforeExit'],
    },
    async ({ signal }) => {
      process.stderr.write(`landlord: ${signal} received, shutting down\n`)
      await close()
    },
  )
}
