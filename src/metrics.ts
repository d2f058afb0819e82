// Prometheus metrics, one registry for the process (GET /metrics).
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client'

export const registry = new Registry()
collectDefaultMetrics({ register: registry, prefix: 'landlord_' })

export const webhookDeliveries = new Counter({
  name: 'landlord_webhook_attempts_total',
  help: 'Webhook delivery attempts by outcome (succeeded, retrying, failed, gone)',
  labelNames: ['outcome'] as const,
  registers: [registry],
})

export const webhookEndpointsDisabled = new Counter({
  name: 'landlord_webhook_endpoints_disabled_total',
  help: 'Webhook endpoints disabled by Landlord (gone: answered 410; failing: beyond WEBHOOK_DISABLE_AFTER)',
  labelNames: ['reason'] as const,
  registers: [registry],
})

export const lifecycleJobs = new Counter({
  name: 'landlord_lifecycle_jobs_total',
  help: 'Lifecycle job runs by step and outcome (applied, retrying, failed, skipped)',
  labelNames: ['step', 'outcome'] as const,
  registers: [registry],
})

export const fleetMigrations = new Counter({
  name: 'landlord_fleet_migration_tenants_total',
  help: 'Tenants handled by fleet migrations, by outcome (succeeded, failed, skipped, deferred)',
  labelNames: ['outcome'] as const,
  registers: [registry],
})

type VersionCounts = () => Promise<Array<{ version: number | null; count: number }>>
let schemaVersions: VersionCounts | undefined

/** Where landlord_tenants_by_schema_version reads from: the registry of this process (set by compose). */
export function trackSchemaVersions(source: VersionCounts | undefined): void {
  schemaVersions = source
}

export const tenantsBySchemaVersion = new Gauge({
  name: 'landlord_tenants_by_schema_version',
  help: 'Tenants (not wiped) per tenant schema version, read from the registry at scrape time; "none": not migrated yet',
  labelNames: ['version'] as const,
  registers: [registry],
  async collect() {
    if (!schemaVersions) return
    const counts = await schemaVersions()
    this.reset()
    for (const { version, count } of counts) this.set({ version: version === null ? 'none' : String(version) }, count)
  },
})
