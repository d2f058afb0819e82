// The statechart as a Markdown table, read from the machine itself: what
// src/lifecycle/README.md shows (a test fails when the README is stale).
import { tenantMachine } from './machine.js'

type Guard = string | { type: string; params?: Record<string, unknown> } | ((...args: never[]) => unknown) & { guards?: Guard[]; name?: string }

/** A guard as people read it: `withinRetention and not provisioned`. */
function describe(guard: Guard | undefined): string {
  if (guard === undefined) return ''
  if (typeof guard === 'string') return guard
  if (typeof guard === 'function') {
    const parts = (guard.guards ?? []).map(describe)
    return guard.name === 'not' ? `not ${parts.join('')}` : parts.join(` ${guard.name} `)
  }
  const param = guard.params && Object.values(guard.params).join(', ')
  return param ? `${guard.type}(${param})` : guard.type
}

/** One row per state and event: target, guard, and the effects the transition queues. */
export function lifecycleTable(): string {
  const lines = ['| state | tags | step | event | guard | target | effects |', '|---|---|---|---|---|---|---|']
  for (const [name, node] of Object.entries(tenantMachine.root.states)) {
    const tags = node.tags.join(', ')
    const step = (node.meta as { step?: string } | undefined)?.step ?? ''
    const rows = [...node.transitions].flatMap(([event, transitions]) => transitions.map((t) => ({ event, t })))
    if (rows.length === 0) lines.push(`| \`${name}\` | ${tags} | ${step} | — | | | |`)
    for (const { event, t } of rows) {
      const target = t.target?.map((n) => `\`${n.key}\``).join(', ') ?? ''
      const entry = t.target?.flatMap((n) => (n.key === name && !t.reenter ? [] : n.entry)) ?? []
      const effects = [...t.actions, ...entry]
        .map((a) => (typeof a === 'object' && a !== null && 'params' in a ? (a.params as Record<string, string>) : undefined))
        .flatMap((p) => (p?.step ? [`job ${p.step}`] : p?.type ? [p.type] : []))
        .join(', ')
      lines.push(`| \`${name}\` | ${tags} | ${step} | ${event} | ${describe(t.guard as Guard | undefined)} | ${target} | ${effects} |`)
    }
  }
  return lines.join('\n')
}
