// One tenant's outcome in a fleet migration, recorded with what follows from
// it in one transaction: the registry's schema version (or the failure that
// counts towards quarantine), the tenant's history, a stop on error, and the
// next tenants' jobs.
import type { Config } from '../config.js'
import { claimItem, findRun, recordItemOutcome, type Outcome } from '../db/fleet.js'
import type { Db } from '../db/index.js'
import type { FleetItem, FleetItemStatus, FleetRun, Tenant } from '../db/schema.js'
import { MigrationError, type TenantMigration } from '../tenancy/migrations.js'
import { readFolder, settle, stopOnError } from './runs.js'

export type { Outcome }

/** Takes a tenant's item for a worker; undefined when the run no longer wants it. */
export async function claimTenant(db: Db, runId: string, tenantId: string): Promise<{ run: FleetRun; item: FleetItem } | undefined> {
  const item = await claimItem(db, runId, tenantId)
  const run = item && (await findRun(db, runId))
  return item && run ? { run, item } : undefined
}

/** What a tenant in `state` gets from a run without a connection being opened, or undefined: migrate it. */
export function decideFromRegistry(run: FleetRun, tenant: Tenant | undefined): Outcome | undefined {
  if (!tenant || tenant.state === 'wiped') return { status: 'skipped', reason: 'wiped' }
  if (tenant.state === 'provisioning') return { status: 'skipped', reason: 'provisioning: born at the head version' }
  if (tenant.state !== 'active') return { status: 'deferred', reason: `${tenant.state}: migrated before it next reports active` }
  if ((tenant.schema_version ?? 0) >= run.target_version) return { status: 'skipped', reason: 'at the target version' }
  return undefined
}

/** The folder as the last run (or retry) read it here, once its checksums matched. */
let lastRead: { key: string; migrations: TenantMigration[] } | undefined

/**
 * The run's files, read afresh once per run (and retry) in each process and
 * checked against what the run started with: every tenant of a run gets the
 * same files, and an edit made since the start fails the run's tenants.
 */
export async function filesOfRun(config: Config, run: FleetRun): Promise<TenantMigration[]> {
  const key = `${run.id}:${run.retried_at?.getTime() ?? 0}`
  if (lastRead?.key === key) return lastRead.migrations
  const migrations = await readFolder(config)
  for (const file of run.files) {
    const now = migrations.find((m) => m.version === file.version)
    if (!now || now.checksum !== file.checksum) {
      throw new MigrationError(`migration ${file.version}_${file.name} changed or went away since the run started; retry the run`, file.version)
    }
  }
  lastRead = { key, migrations }
  return migrations
}

/**
 * Records a tenant's outcome with what follows from it, in one statement: the
 * registry's schema version (or the failure, towards quarantine) and the
 * tenant's history. Then stops the run if it stops on error, and settles it
 * (settle() in runs.ts). A crash in between is settled by the maintenance sweep.
 */
export async function recordOutcome(db: Db, config: Config, run: FleetRun, tenantId: string, outcome: Outcome, from?: FleetItemStatus[]): Promise<void> {
  const recorded = await recordItemOutcome(db, run.id, tenantId, outcome, {
    from,
    registry: !run.dry_run,
    actor: `fleet-migration:${run.id}`,
    quarantineAfter: config.fleetQuarantineAfter,
  })
  if (!recorded) return
  if (outcome.status === 'failed' && run.on_error === 'stop') await stopOnError(db, run.id)
  await settle(db, run)
}
