// Prometheus metrics, one registry for the process (GET /metrics).
import { Counter, Registry, collectDefaultMetrics } from 'prom-client'

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
