// The statechart, exhaustively: every state against every event, compared
// with the table of DESIGN.md, plus reachability over the whole graph.
import t from 'tap'
import { initialTransition, transition } from 'xstate'
import { getShortestPaths, getSimplePaths } from 'xstate/graph'
import { STABLE_STATES, TRANSITIONAL_STATES, type LifecycleEvent } from '../../src/lifecycle/events.js'
import { tenantMachine, type TenantContext } from '../../src/lifecycle/machine.js'

const EVENTS: Record<string, LifecycleEvent> = {
  SUSPEND: { type: 'SUSPEND' },
  RESUME: { type: 'RESUME' },
  HIBERNATE: { type: 'HIBERNATE' },
  WAKE: { type: 'WAKE' },
  DECOMMISSION: { type: 'DECOMMISSION', retentionMs: 86_400_000 },
  DECOMMISSION_NOW: { type: 'DECOMMISSION', retentionMs: 0 },
  RESTORE: { type: 'RESTORE' },
  WIPE: { type: 'WIPE' },
  RETRY: { type: 'RETRY' },
  APPLIED: { type: 'EFFECTS_APPLIED' },
  FAILED: { type: 'EFFECTS_FAILED', error: 'boom' },
  REQUEUED: { type: 'JOB_REQUEUED' },
}

const decommission = { DECOMMISSION: 'decommissioning', DECOMMISSION_NOW: 'wiping' }
const working = (done: string) => ({ APPLIED: done, FAILED: 'failed' })
const requeued = (state: string) => ({ ...working(STABLE_OF[state] as string), REQUEUED: state })

const STABLE_OF: Record<string, string> = {
  provisioning: 'active',
  suspending: 'suspended',
  resuming: 'active',
  hibernating: 'hibernated',
  waking: 'active',
  decommissioning: 'decommissioned',
  restoring: 'active',
  wiping: 'wiped',
}

/** state → event → target. Anything absent must be refused. */
const EXPECTED: Record<string, Record<string, string>> = {
  provisioning: requeued('provisioning'),
  active: { SUSPEND: 'suspending', HIBERNATE: 'hibernating', ...decommission },
  suspending: requeued('suspending'),
  suspended: { RESUME: 'resuming', ...decommission },
  resuming: requeued('resuming'),
  hibernating: requeued('hibernating'),
  hibernated: { WAKE: 'waking', SUSPEND: 'suspending', ...decommission },
  waking: requeued('waking'),
  decommissioning: requeued('decommissioning'),
  decommissioned: { RESTORE: 'restoring', WIPE: 'wiping', DECOMMISSION_NOW: 'wiping' },
  restoring: requeued('restoring'),
  wiping: requeued('wiping'),
  wiped: {},
}

const STEP_OF: Record<string, string> = {
  provisioning: 'provision',
  suspending: 'suspend',
  resuming: 'resume',
  hibernating: 'hibernate',
  waking: 'wake',
  decommissioning: 'decommission',
  restoring: 'restore',
  wiping: 'wipe',
}

const WEBHOOK_ON_ARRIVAL: Record<string, string> = {
  active: '', // depends on where it came from; checked below
  suspended: 'tenant.suspended',
  hibernated: 'tenant.hibernated',
  decommissioned: 'tenant.decommissioned',
  wiped: 'tenant.wiped',
}

const ctx: TenantContext = { failedDuring: null, error: null, provisioned: true }
const at = (value: string, context: TenantContext = ctx) => tenantMachine.resolveState({ value, context })

t.test('the machine knows every state of the design, stable and transitional', async (t) => {
  const known = Object.keys(tenantMachine.root.states).sort()
  t.same(known, [...STABLE_STATES, ...TRANSITIONAL_STATES].sort())
})

t.test('a new tenant starts provisioning, announces itself and queues the provisioning job', async (t) => {
  const [snapshot, actions] = initialTransition(tenantMachine)
  t.equal(snapshot.value, 'provisioning')
  t.same(
    actions.map((a) => [a.type, a.params]),
    [
      ['notify', { type: 'tenant.created' }],
      ['runJob', { step: 'provision' }],
    ],
  )
})

for (const [state, allowed] of Object.entries(EXPECTED)) {
  t.test(`from ${state}, exactly the design's events are accepted`, async (t) => {
    for (const [name, event] of Object.entries(EVENTS)) {
      const current = at(state)
      const target = allowed[name]
      t.equal(current.can(event), target !== undefined, `${name} ${target ? 'accepted' : 'refused'}`)
      const [next, actions] = transition(tenantMachine, current, event)
      if (target === undefined) {
        t.equal(next, current, `${name} leaves the snapshot untouched`)
        t.same(actions, [], `${name} causes no effect`)
        continue
      }
      t.equal(next.value, target, `${name} leads to ${target}`)
      const jobs = actions.filter((a) => a.type === 'runJob').map((a) => (a.params as { step: string }).step)
      t.same(jobs, STEP_OF[target] ? [STEP_OF[target]] : [], `${name} queues the job of ${target}`)
      const hooks = actions.filter((a) => a.type === 'notify').map((a) => (a.params as { type: string }).type)
      if (name === 'REQUEUED') {
        t.same(hooks, [], 'a requeued step announces nothing')
      } else if (target === 'failed') {
        t.same(next.context, { failedDuring: state, error: 'boom', provisioned: true }, 'the failure is remembered')
        t.same(hooks, state === 'provisioning' ? ['tenant.provisioning_failed'] : [])
      } else if (WEBHOOK_ON_ARRIVAL[target]) {
        t.same(hooks, [WEBHOOK_ON_ARRIVAL[target]], `arriving in ${target} is announced`)
      } else if (target === 'active') {
        const expected = {
          provisioning: 'tenant.provisioned',
          resuming: 'tenant.resumed',
          waking: 'tenant.woken',
          restoring: 'tenant.restored',
        }[state]
        t.same(hooks, [expected], `arriving in active from ${state} is announced`)
      } else {
        t.same(hooks, [], 'starting a step announces nothing yet')
      }
    }
  })
}

for (const during of TRANSITIONAL_STATES) {
  t.test(`a tenant that failed while ${during} retries that same step, or is decommissioned`, async (t) => {
    const failed = at('failed', { failedDuring: during, error: 'boom', provisioned: during !== 'provisioning' })
    for (const [name, event] of Object.entries(EVENTS)) {
      const target = { RETRY: during, ...decommission }[name]
      t.equal(failed.can(event), target !== undefined, `${name} ${target ? 'accepted' : 'refused'}`)
      if (target) t.equal(transition(tenantMachine, failed, event)[0].value, target)
    }
    const [retried, actions] = transition(tenantMachine, failed, EVENTS.RETRY as LifecycleEvent)
    t.same(
      actions.map((a) => a.params),
      [{ step: STEP_OF[during] }],
    )
    const [settled] = transition(tenantMachine, retried, EVENTS.APPLIED as LifecycleEvent)
    t.same(settled.context, { failedDuring: null, error: null, provisioned: true }, 'success clears the failure')
  })
}

t.test('a tenant that never finished provisioning becomes active only by finishing it', async (t) => {
  const [created] = initialTransition(tenantMachine)
  t.equal(created.context.provisioned, false, 'a new tenant is not provisioned yet')
  const [failed] = transition(tenantMachine, created, { type: 'EFFECTS_FAILED', error: 'boom' })
  const [decommissioning] = transition(tenantMachine, failed, { type: 'DECOMMISSION', retentionMs: 60_000 })
  const [decommissioned] = transition(tenantMachine, decommissioning, { type: 'EFFECTS_APPLIED' })
  t.equal(decommissioned.value, 'decommissioned')
  const [restoring, actions] = transition(tenantMachine, decommissioned, { type: 'RESTORE' })
  t.equal(restoring.value, 'provisioning', 'RESTORE resumes provisioning instead of reactivating a half-made database')
  t.same(actions.map((a) => a.params), [{ step: 'provision' }])
  const [active, announced] = transition(tenantMachine, restoring, { type: 'EFFECTS_APPLIED', schemaVersion: 1 })
  t.equal(active.value, 'active')
  t.same(
    announced.filter((a) => a.type === 'notify').map((a) => a.params),
    [{ type: 'tenant.provisioned' }],
    'billing hears tenant.provisioned, not tenant.restored',
  )
  t.equal(active.context.provisioned, true)

  // Once provisioned, a later decommission and restore is a plain restore.
  const [again] = transition(tenantMachine, active, { type: 'DECOMMISSION', retentionMs: 60_000 })
  const [kept] = transition(tenantMachine, again, { type: 'EFFECTS_APPLIED' })
  t.equal(transition(tenantMachine, kept, { type: 'RESTORE' })[0].value, 'restoring')
})

t.test('legal holds and retention are guards: the facts on the event decide', async (t) => {
  const held = { legalHold: true }
  for (const state of ['active', 'suspended', 'hibernated', 'failed']) {
    t.notOk(at(state).can({ type: 'DECOMMISSION', retentionMs: 0, ...held }), `${state}: a held tenant is not wiped by DECOMMISSION PT0S`)
    t.ok(at(state).can({ type: 'DECOMMISSION', retentionMs: 1, ...held }), `${state}: decommissioning with retention is allowed under hold`)
  }
  t.notOk(at('decommissioned').can({ type: 'WIPE', ...held }))
  t.notOk(at('decommissioned').can({ type: 'DECOMMISSION', retentionMs: 0, ...held }))
  t.notOk(at('failed', { failedDuring: 'wiping', error: 'x', provisioned: true }).can({ type: 'RETRY', ...held }), 'retrying a wipe is a wipe')
  t.ok(at('failed', { failedDuring: 'suspending', error: 'x', provisioned: true }).can({ type: 'RETRY', ...held }), 'other retries are not wipes')
  t.notOk(at('decommissioned').can({ type: 'RESTORE', retentionExpired: true }), 'no restore once retention ran out')
  t.ok(at('decommissioned').can({ type: 'RESTORE', retentionExpired: false }))
})

t.test('the graph: every state is reachable from a new tenant, and only wiped is final', async (t) => {
  const events = Object.values(EVENTS)
  const paths = getShortestPaths(tenantMachine, { events })
  const reached = new Set(paths.map((p) => p.state.value as string))
  t.same([...reached].sort(), Object.keys(tenantMachine.root.states).sort())
  const finals = Object.entries(tenantMachine.root.states)
    .filter(([, node]) => node.type === 'final')
    .map(([name]) => name)
  t.same(finals, ['wiped'])
  // Every simple path to wiped passes through wiping: data is never dropped without the wipe step.
  const toWiped = getSimplePaths(tenantMachine, { events, toState: (s) => s.value === 'wiped' })
  t.ok(toWiped.length > 0)
  const shortcuts = toWiped.filter((p) => !p.steps.some((s) => s.state.value === 'wiping'))
  t.equal(shortcuts.length, 0, `all ${toWiped.length} paths to wiped pass through wiping`)
})
