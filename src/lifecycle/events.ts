// The events a tenant's lifecycle accepts, the effects its transitions cause,
// and the webhook event types billing hears about.

/**
 * Facts about the tenant row that guards decide on. The transition service
 * reads them from the locked row and sets them on the event: callers never do.
 */
export interface TenantFacts {
  /** A legal hold is placed: nothing may wipe. */
  legalHold?: boolean
  /** `wipe_after` has passed: the data may be gone any moment, no RESTORE. */
  retentionExpired?: boolean
}

/** Events an operator sends through the API. */
export type OperatorEvent = (
  | { type: 'SUSPEND'; reason?: string }
  | { type: 'RESUME' }
  | { type: 'HIBERNATE' }
  | { type: 'WAKE' }
  | { type: 'DECOMMISSION'; retentionMs: number }
  | { type: 'RESTORE' }
  | { type: 'WIPE' }
  | { type: 'RETRY' }
) &
  TenantFacts

/**
 * Events a worker or the scheduler reports: a step's effects applied or given
 * up, or a lost job handed out again (re-entering the state runs its step anew).
 */
export type WorkerEvent =
  | { type: 'EFFECTS_APPLIED'; schemaVersion?: number }
  | { type: 'EFFECTS_FAILED'; error: string }
  | { type: 'JOB_REQUEUED' }

export type LifecycleEvent = OperatorEvent | WorkerEvent
export type LifecycleEventType = LifecycleEvent['type']

export const OPERATOR_EVENTS = ['SUSPEND', 'RESUME', 'HIBERNATE', 'WAKE', 'DECOMMISSION', 'RESTORE', 'WIPE', 'RETRY'] as const

/** A background step: one BullMQ job that makes the infrastructure match a state. */
export type Step = 'provision' | 'suspend' | 'resume' | 'hibernate' | 'wake' | 'decommission' | 'restore' | 'wipe'

export const WEBHOOK_EVENT_TYPES = [
  'tenant.created',
  'tenant.provisioned',
  'tenant.provisioning_failed',
  'tenant.suspended',
  'tenant.resumed',
  'tenant.hibernated',
  'tenant.woken',
  'tenant.decommissioned',
  'tenant.restored',
  'tenant.wiped',
  'tenant.credentials_rotated',
  'fleet_migration.completed',
] as const
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number]

export const STABLE_STATES = ['active', 'suspended', 'hibernated', 'decommissioned', 'wiped', 'failed'] as const
export const TRANSITIONAL_STATES = [
  'provisioning',
  'suspending',
  'resuming',
  'hibernating',
  'waking',
  'decommissioning',
  'restoring',
  'wiping',
] as const
export type StableState = (typeof STABLE_STATES)[number]
export type TransitionalState = (typeof TRANSITIONAL_STATES)[number]
export type TenantState = StableState | TransitionalState
