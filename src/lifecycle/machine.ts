// The tenant statechart: the one lifecycle table. Pure: actions are named
// markers that transition.ts turns into outbox rows (a job to run, a webhook to
// send); nothing here does I/O. Every rule about which event may move a tenant
// where lives here, legal holds and retention included (as guards on the facts
// the transition service puts on each event), and every state says what it is
// (its step, its tags) once, for the rest of the code to read.
import { and, assign, not, setup } from 'xstate'
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

/**
 * Tags, read through `snapshot.hasTag` or `statesTagged`:
 * - `fenced`: the database refuses connections (or is on its way to);
 * - `locked`: no credentials are issued (423);
 * - `settling`: on its way to active (or to hibernated, then woken): a credential request waits;
 * - `gone`: the tenant's data is being or has been destroyed;
 * - `serving`: the database accepts the tenant's connections and credentials are issued.
 */
export type StateTag = 'fenced' | 'locked' | 'settling' | 'gone' | 'serving'

/** What each transitional state does: its step, where it settles, what billing hears. */
export const STEPS = {
  provisioning: { step: 'provision', done: 'active', event: 'tenant.provisioned', failed: 'tenant.provisioning_failed', tags: [] },
  suspending: { step: 'suspend', done: 'suspended', event: 'tenant.suspended', tags: ['fenced', 'locked'] },
  resuming: { step: 'resume', done: 'active', event: 'tenant.resumed', tags: ['settling'] },
  hibernating: { step: 'hibernate', done: 'hibernated', event: 'tenant.hibernated', tags: ['fenced', 'settling'] },
  waking: { step: 'wake', done: 'active', event: 'tenant.woken', tags: ['settling'] },
  decommissioning: { step: 'decommission', done: 'decommissioned', event: 'tenant.decommissioned', tags: ['fenced', 'locked'] },
  restoring: { step: 'restore', done: 'active', event: 'tenant.restored', tags: ['settling'] },
  wiping: { step: 'wipe', done: 'wiped', event: 'tenant.wiped', tags: ['fenced', 'locked', 'gone'] },
} as const satisfies Record<
  TransitionalState,
  { step: Step; done: string; event: WebhookEventType; failed?: WebhookEventType; tags: readonly StateTag[] }
>

const job = (step: Step) => ({ type: 'runJob', params: { step } }) as const
const notify = (type: WebhookEventType) => ({ type: 'notify', params: { type } }) as const

/** A transitional state: runs its step on entry, then settles on the worker's report. */
function working(state: TransitionalState) {
  const d: (typeof STEPS)[TransitionalState] = STEPS[state]
  return {
    entry: job(d.step),
    meta: { step: d.step },
    tags: d.tags,
    on: {
      EFFECTS_APPLIED: {
        target: d.done,
        actions: [notify(d.event), 'clearFailure', ...(d.step === 'provision' ? (['markProvisioned'] as const) : [])],
      },
      EFFECTS_FAILED: {
        target: 'failed',
        actions: [{ type: 'recordFailure', params: { during: state } }, ...('failed' in d ? [notify(d.failed)] : [])],
      },
      // The step's job was lost: enter the state again, which queues a fresh one.
      JOB_REQUEUED: { target: state, reenter: true },
    },
  } as const
}

// DECOMMISSION with zero retention wipes at once (unless held); otherwise the data is kept.
const decommission = [
  { guard: and(['wipesNow', 'notHeld']), target: 'wiping' },
  { guard: 'keepsData', target: 'decommissioning' },
] as const

export const tenantMachine = setup({
  types: {
    context: {} as TenantContext,
    events: {} as LifecycleEvent,
    tags: {} as StateTag,
  },
  guards: {
    wipesNow: ({ event }) => event.type === 'DECOMMISSION' && event.retentionMs === 0,
    keepsData: ({ event }) => event.type === 'DECOMMISSION' && event.retentionMs > 0,
    notHeld: ({ event }) => !('legalHold' in event && event.legalHold === true),
    withinRetention: ({ event }) => !('retentionExpired' in event && event.retentionExpired === true),
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
    provisioning: working('provisioning'),
    active: {
      tags: ['serving'],
      on: { SUSPEND: 'suspending', HIBERNATE: 'hibernating', DECOMMISSION: decommission },
    },
    suspending: working('suspending'),
    suspended: {
      tags: ['fenced', 'locked'],
      on: { RESUME: 'resuming', DECOMMISSION: decommission },
    },
    resuming: working('resuming'),
    hibernating: working('hibernating'),
    hibernated: {
      tags: ['fenced'],
      on: { WAKE: 'waking', SUSPEND: 'suspending', DECOMMISSION: decommission },
    },
    waking: working('waking'),
    decommissioning: working('decommissioning'),
    decommissioned: {
      tags: ['fenced', 'locked'],
      on: {
        RESTORE: [
          { guard: and(['withinRetention', 'provisioned']), target: 'restoring' },
          // Decommissioned before it was ever provisioned: it comes back by finishing that.
          { guard: and(['withinRetention', not('provisioned')]), target: 'provisioning' },
        ],
        WIPE: { guard: 'notHeld', target: 'wiping' },
        // Zero retention on a tenant already decommissioned: wipe it without waiting.
        DECOMMISSION: { guard: and(['wipesNow', 'notHeld']), target: 'wiping' },
      },
    },
    restoring: working('restoring'),
    wiping: working('wiping'),
    wiped: { type: 'final', tags: ['fenced', 'locked', 'gone'] },
    failed: {
      on: {
        RETRY: (Object.keys(STEPS) as TransitionalState[]).map((state) => ({
          // Retrying a wipe is a wipe: a legal hold refuses it too.
          guard: state === 'wiping' ? and([{ type: 'failedDuring', params: { state } }, 'notHeld']) : { type: 'failedDuring', params: { state } },
          target: state,
        })),
        DECOMMISSION: decommission,
      },
    },
  },
})

export type TenantMachine = typeof tenantMachine
