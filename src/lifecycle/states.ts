// What the rest of the code asks about states, read from the statechart
// itself: which step a transitional state runs, which states carry a tag.
// Nothing here lists states by hand.
import type { Step, TenantState, TransitionalState } from './events.js'
import { tenantMachine, type StateTag } from './machine.js'

const nodes = Object.entries(tenantMachine.root.states) as Array<[TenantState, (typeof tenantMachine.root.states)[string]]>

const stepOfState = new Map<TenantState, Step>()
const stateOfStep = new Map<Step, TransitionalState>()
for (const [state, node] of nodes) {
  const step = (node.meta as { step?: Step } | undefined)?.step
  if (step === undefined) continue
  stepOfState.set(state, step)
  stateOfStep.set(step, state as TransitionalState)
}

/** The transitional state a step works for. */
export function stateOf(step: Step): TransitionalState | undefined {
  return stateOfStep.get(step)
}

/** The step a state runs, if it is transitional. */
export function stepOf(state: TenantState): Step | undefined {
  return stepOfState.get(state)
}

export function isTransitional(state: TenantState): boolean {
  return stepOfState.has(state)
}

/** Every transitional state, in the machine's order. */
export const TRANSITIONAL: readonly TransitionalState[] = [...stateOfStep.values()]

/** The states that carry `tag`. */
export function statesTagged(tag: StateTag): ReadonlySet<TenantState> {
  return new Set(nodes.filter(([, node]) => node.tags.includes(tag)).map(([state]) => state))
}

export function hasTag(state: TenantState, tag: StateTag): boolean {
  return tenantMachine.root.states[state]?.tags.includes(tag) ?? false
}
