// The tenant statechart. Pure: actions are named markers that transition.ts
// turns into outbox rows (a job to run, a webhook to send); nothing here does I/O.
import { assign, setup } from 'xstate'
import type { LifecycleEvent, Step, TransitionalState, WebhookEventType } from './events.js'

export interface TenantContext {
  /** The transitional state whose effects gave up; RETRY goes back to it. */
  failedDuring: TransitionalState | null
  /** Last error a worker reported. */
  error: string | null
  /**
   * Provisioning has finished once. Until then the tenant was never usable:
   * RESTORE finishes provisioning instead of reactivating a half-made database.
   */
  provisioned: boolean
}

const job = (step: Step) => ({ type: 'runJob', params: { step } }) as const
const notify = (type: WebhookEventType) => ({ type: 'notify', params: { type } }) as const

/** A transitional state: runs its step on entry, then settles on the worker's report. */
function working(state: TransitionalState, step: Step, done: string, event: WebhookEventType, failed?: WebhookEventType) {
  return {
    entry: job(step),
    on: {
      EFFECTS_APPLIED: { target: done, actions: [notify(event), 'clearFailure', ...(step === 'provision' ? (['markProvisioned'] as const) : [])] },
      EFFECTS_FAILED: {
        target: 'failed',
        actions: [{ type: 'recordFailure', params: { during: state } }, ...(failed ? [notify(failed)] : [])],
      },
    },
  } as const
}

// DECOMMISSION with zero retention wipes at once; otherwise the data is kept.
const decommission = [
  { guard: 'wipesNow', target: 'wiping' },
  { guard: 'keepsData', target: 'decommissioning' },
] as const

export const tenantMachine = setup({
  types: {
    context: {} as TenantContext,
    events: {} as LifecycleEvent,
  },
  guards: {
    wipesNow: ({ event }) => event.type === 'DECOMMISSION' && event.retentionMs === 0,
    keepsData: ({ event }) => event.type === 'DECOMMISSION' && event.retentionMs > 0,
    failedDuring: ({ context }, params: { state: TransitionalState }) => context.failedDuring === params.state,
    provisioned: ({ context }) => context.provisioned,
  },
  actions: {
    runJob: (_, _params: { step: Step }) => {},
    notify: (_, _params: { type: WebhookEventType }) => {},
    recordFailure: assign(({ event }, params: { during: TransitionalState }) => ({
      failedDuring: params.during,
      error: event.type === 'EFFECTS_FAILED' ? event.error : null,
    })),
    clearFailure: assign({ failedDuring: null, error: null }),
    markProvisioned: assign({ provisioned: true }),
  },
}).createMachine({
  id: 'tenant',
  context: { failedDuring: null, error: null, provisioned: false },
  initial: 'provisioning',
  entry: notify('tenant.created'),
  states: {
    provisioning: working('provisioning', 'provision', 'active', 'tenant.provisioned', 'tenant.provisioning_failed'),
    active: {
      on: { SUSPEND: 'suspending', HIBERNATE: 'hibernating', DECOMMISSION: decommission },
    },
    suspending: working('suspending', 'suspend', 'suspended', 'tenant.suspended'),
    suspended: {
      on: { RESUME: 'resuming', DECOMMISSION: decommission },
    },
    resuming: working('resuming', 'resume', 'active', 'tenant.resumed'),
    hibernating: working('hibernating', 'hibernate', 'hibernated', 'tenant.hibernated'),
    hibernated: {
      on: { WAKE: 'waking', SUSPEND: 'suspending', DECOMMISSION: decommission },
    },
    waking: working('waking', 'wake', 'active', 'tenant.woken'),
    decommissioning: working('decommissioning', 'decommission', 'decommissioned', 'tenant.decommissioned'),
    decommissioned: {
      on: {
        // A tenant decommissioned before it was ever provisioned comes back by finishing that.
        RESTORE: [{ guard: 'provisioned', target: 'restoring' }, { target: 'provisioning' }],
        WIPE: 'wiping',
      },
    },
    restoring: working('restoring', 'restore', 'active', 'tenant.restored'),
    wiping: working('wiping', 'wipe', 'wiped', 'tenant.wiped'),
    wiped: { type: 'final' },
    failed: {
      on: {
        RETRY: (
          [
            'provisioning',
            'suspending',
            'resuming',
            'hibernating',
            'waking',
            'decommissioning',
            'restoring',
            'wiping',
          ] as const
        ).map((state) => ({ guard: { type: 'failedDuring', params: { state } }, target: state })),
        DECOMMISSION: decommission,
      },
    },
  },
})

export type TenantMachine = typeof tenantMachine
