// One tenant's outcome in a fleet migration, recorded with what follows from
// it in one transaction: the registry's schema version (or the failure that
// counts towards quarantine), the tenant's history, a stop on error, and the
// next tenants' jobs.
import type { Config } from '../config.js'
import { claimItem, findRun, finishItem, lockRun, recordMigrated, recordMigrationFailure, updateRun, type Outcome } from '../db/fleet.js'
import { appendEvent } from '../db/history.js'
import type { Db } from '../db/index.js'
import type { FleetItem, FleetItemStatus, FleetRun, Tenant } from '../db/schema.js'
import { MigrationError, type TenantMigration } from '../tenancy/migrations.js'
import { feed, readFolder } from './runs.js'

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

/** The run's files, read afresh and checked against what the run started with. */
export async function filesOfRun(config: Config, run: FleetRun): Promise<TenantMigration[]> {
  const migrations = await readFolder(config)
  for (const file of run.files) {
    const now = migrations.find((m) => m.version === file.version)
    if (!now || now.checksum !== file.checksum) {
      throw new MigrationError(`migration ${file.version}_${file.name} changed or went away since the run started; retry the run`, file.version)
    }
  }
  return migrations
}

export async function recordOutcome(db: Db, config: Config, run: FleetRun, tenantId: string, outcome: Outcome, from?: FleetItemStatus[]): Promise<void> {
  const actor = `fleet-migration:${run.id}`
  await db.transaction().execute(async (trx) => {
    // The run first, as feed() does: one lock order.
    const locked = await lockRun(trx, run.id)
    if (!locked || !(await finishItem(trx, run.id, tenantId, outcome, from))) return
    if (!run.dry_run && outcome.status === 'succeeded') {
      await recordMigrated(trx, tenantId, outcome.to_version)
      await appendEvent(trx, { tenant_id: tenantId, type: 'schema_migrated', from_state: null, to_state: null, actor, data: { version: outcome.to_version } })
    }
    if (outcome.status === 'failed') {
      const quarantined = run.dry_run ? false : await recordMigrationFailure(trx, tenantId, outcome.error, config.fleetQuarantineAfter)
      if (!run.dry_run) {
        await appendEvent(trx, {
          tenant_id: tenantId,
          type: 'schema_migration_failed',
          from_state: null,
          to_state: null,
          actor,
          data: { version: outcome.failed_version, error: outcome.error, quarantined },
        })
      }
      if (locked.status === 'running' && locked.on_error === 'stop') {
        await updateRun(trx, run.id, { status: 'stopped', stop_reason: 'a tenant failed and on_error is stop' })
      }
    }
    await feed(trx, run.id)
  })
}

