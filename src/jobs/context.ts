// What every worker is given, and what a lifecycle step sees of its job.
// Kept apart from the dispatcher (steps.ts) so steps never import it.
import type { Job } from 'bullmq'
import type pg from 'pg'
import type { Config } from '../config.js'
import type { Db } from '../db/index.js'
import type { Tenant } from '../db/schema.js'
import type { Logger } from '../log.js'
import type { SecretsBackend } from '../secrets/backend.js'
import type { LifecycleJobData } from './queues.js'

export interface WorkerDeps {
  config: Config
  db: Db
  /** Admin pool on the tenant cluster. */
  cluster: pg.Pool
  secrets: SecretsBackend
  /** Key-encryption key: seals tenant data keys and webhook secrets. */
  masterKey: Buffer
  log: Logger
}

export interface StepContext {
  deps: WorkerDeps
  tenant: Tenant
  job: Job<LifecycleJobData>
  log: Logger
  /** Runs `fn` once per job across attempts: skipped when a previous attempt finished it. */
  checkpoint: (name: string, fn: () => Promise<void>) => Promise<void>
}

/** What a step reports with EFFECTS_APPLIED. */
export interface StepResult {
  schemaVersion?: number
}

export type StepHandler = (ctx: StepContext) => Promise<StepResult | void>
