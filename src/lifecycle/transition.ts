// The only writer of tenant state. Every change is one Postgres transaction:
// lock the row, put the row's facts on the event, check it against the
// statechart, write state + snapshot with an optimistic version check, append
// a history row, and write one outbox row per effect. The relay later hands
// outbox rows to BullMQ, so a crash between commit and enqueue loses nothing.
import type { Transaction } from 'kysely'
import { initialTransition, transition } from 'xstate'
import type { Db } from '../db/index.js'
import { appendEvent } from '../db/history.js'
import { writeOutbox } from '../db/outbox.js'
import { forgetTenant } from '../db/principals.js'
import type { Database, NewOutboxRow, Tenant, TenantUpdate } from '../db/schema.js'
import { getLockedTenant, insertTenant, saveTenant } from '../db/tenants.js'
import { concurrentChange, eventNotAllowed, invalidSlug, legalHoldBlocks, retentionExpired, slugTaken, type LandlordError } from '../errors.js'
import { slugProblem, tenantNames } from '../tenancy/identifiers.js'
import { OPERATOR_EVENTS, type LifecycleEvent, type Step, type TenantFacts, type TenantState } from './events.js'
import { tenantMachine, type TenantContext } from './machine.js'

type Snapshot = ReturnType<typeof tenantMachine.resolveState>
type Action = ReturnType<typeof transition<typeof tenantMachine>>[1][number]

export interface NewTenantInput {
  slug: string
  name?: string | null
  plan?: string | null
  region?: string | null
  metadata?: Record<string, unknown>
}

interface Stored {
  value: string
  /** `provisioned` is missing from snapshots written before it existed. */
  context: Omit<TenantContext, 'provisioned'> & { provisioned?: boolean }
}

function stored(snapshot: Snapshot): Stored {
  return { value: snapshot.value, context: snapshot.context }
}

/** The machine snapshot a registry row holds. */
export function rehydrate(tenant: Pick<Tenant, 'snapshot' | 'schema_version'>): Snapshot {
  const s = tenant.snapshot as Stored
  // Snapshots stored before `provisioned` existed: a tenant with a schema version finished provisioning.
  const provisioned = s.context.provisioned ?? tenant.schema_version !== null
  return tenantMachine.resolveState({ value: s.value, context: { ...s.context, provisioned } })
}

/** The row's facts the machine's guards decide on. */
function factsOf(tenant: Tenant): Required<TenantFacts> {
  return {
    legalHold: tenant.legal_hold_at !== null,
    retentionExpired: tenant.state === 'decommissioned' && tenant.wipe_after !== null && tenant.wipe_after <= new Date(),
  }
}

/**
 * Operator events the statechart accepts from this snapshot, whatever the
 * row's facts (a hold or an expired retention is reported with its own code).
 * DECOMMISSION counts when either retention choice is accepted.
 */
export function allowedEvents(snapshot: Snapshot): string[] {
  const clear: Required<TenantFacts> = { legalHold: false, retentionExpired: false }
  return OPERATOR_EVENTS.filter((type) =>
    type === 'DECOMMISSION'
      ? [0, 1].some((retentionMs) => snapshot.can({ type, retentionMs, ...clear }))
      : snapshot.can({ type, ...clear }),
  )
}

/** Why the machine refused `event`: a fact that blocks it, or no such transition. */
function refusal(current: Snapshot, event: LifecycleEvent, tenant: Tenant): LandlordError {
  const facts = factsOf(tenant)
  if (facts.legalHold && current.can({ ...event, legalHold: false } as LifecycleEvent)) return legalHoldBlocks(tenant.legal_hold_reason)
  if (facts.retentionExpired && current.can({ ...event, retentionExpired: false } as LifecycleEvent)) return retentionExpired(tenant.wipe_after!)
  return eventNotAllowed(event.type, tenant.state, allowedEvents(current))
}

export function jobRow(tenant: Tenant, name: string, extra: Record<string, unknown> = {}): NewOutboxRow {
  return { kind: 'job', name, tenant_id: tenant.id, payload: { tenantId: tenant.id, version: tenant.version, ...extra } }
}

export function webhookRow(tenant: Tenant, type: string): NewOutboxRow {
  return {
    kind: 'webhook',
    name: type,
    tenant_id: tenant.id,
    payload: { type, timestamp: new Date().toISOString(), data: { tenant: webhookTenant(tenant) } },
  }
}

function outboxRows(tenant: Tenant, actions: Action[]): NewOutboxRow[] {
  const rows: NewOutboxRow[] = []
  for (const action of actions) {
    const params = action.params as { step?: Step; type?: string }
    if (action.type === 'runJob' && params.step) rows.push(jobRow(tenant, params.step))
    else if (action.type === 'notify' && params.type) rows.push(webhookRow(tenant, params.type))
  }
  return rows
}

/** What billing sees of a tenant: identity and state, never secrets. */
function webhookTenant(t: Tenant) {
  return { id: t.id, slug: t.slug, name: t.name, plan: t.plan, region: t.region, state: t.state, metadata: t.metadata }
}

/**
 * Appends a history row that records something done to a tenant without a
 * state change (a legal hold, a rotation, a wipe receipt): from and to are
 * the state it is in.
 */
export async function appendHistory(
  db: Db | Transaction<Database>,
  tenant: Pick<Tenant, 'id' | 'state'>,
  type: string,
  actor: string,
  data: Record<string, unknown> = {},
): Promise<void> {
  await appendEvent(db, { tenant_id: tenant.id, type, from_state: tenant.state, to_state: tenant.state, actor, data })
}

/**
 * Registers a tenant in `provisioning` and queues its provisioning job.
 * `within` runs in the same transaction once the tenant is written: the API
 * records its idempotent response there, so a crash cannot separate the two.
 */
export async function createTenant(
  db: Db,
  prefix: string,
  input: NewTenantInput,
  actor: string,
  within?: (trx: Transaction<Database>, tenant: Tenant) => Promise<void>,
): Promise<Tenant> {
  const problem = slugProblem(input.slug)
  if (problem) throw invalidSlug(input.slug, problem)
  const [snapshot, actions] = initialTransition(tenantMachine)
  const names = tenantNames(prefix, input.slug)
  return db.transaction().execute(async (trx) => {
    const tenant = await insertTenant(trx, {
      slug: input.slug,
      name: input.name ?? null,
      plan: input.plan ?? null,
      region: input.region ?? null,
      metadata: JSON.stringify(input.metadata ?? {}),
      database_name: names.database,
      owner_role: names.owner,
      state: snapshot.value,
      snapshot: JSON.stringify(stored(snapshot)),
      operation: operationOf(actions),
    })
    if (!tenant) throw slugTaken(input.slug)
    await appendEvent(trx, { tenant_id: tenant.id, type: 'CREATE', from_state: null, to_state: tenant.state, actor })
    await writeOutbox(trx, outboxRows(tenant, actions))
    await within?.(trx, tenant)
    return tenant
  })
}

export interface ApplyOptions {
  actor: string
  /** Workers pass the state they worked for: a stale report is then ignored, not an error. */
  expectState?: TenantState
  /** With expectState: the version the job was queued at; a report from an older run is ignored. */
  expectVersion?: number
  /** A condition on the locked row; when it does not hold, nothing is written and undefined is returned. */
  precondition?: (tenant: Tenant) => boolean
  /** Extra columns to write with the transition (e.g. `wipe_after`), given the target and the locked row. */
  extra?: (next: TenantState, tenant: Tenant) => Pick<TenantUpdate, 'wipe_after'>
  data?: Record<string, unknown>
}

/**
 * Applies one event to one tenant. Throws 404 for an unknown tenant and 409
 * for an event the statechart refuses (with the allowed events, or the legal
 * hold or expired retention that blocks it). Returns undefined, writing
 * nothing, when `expectState`, `expectVersion` or `precondition` no longer holds.
 */
export async function applyEvent(db: Db, ref: string, event: LifecycleEvent, opts: ApplyOptions): Promise<Tenant | undefined> {
  return db.transaction().execute(async (trx) => {
    const tenant = await getLockedTenant(trx, ref)
    if (opts.expectState !== undefined && tenant.state !== opts.expectState) return undefined
    if (opts.expectVersion !== undefined && tenant.version !== opts.expectVersion) return undefined
    if (opts.precondition && !opts.precondition(tenant)) return undefined
    const current = rehydrate(tenant)
    const decided = { ...event, ...factsOf(tenant) } as LifecycleEvent
    if (!current.can(decided)) throw refusal(current, event, tenant)
    const [next, actions] = transition(tenantMachine, current, decided)
    const state = next.value
    const updated = await saveTenant(trx, tenant, {
      state,
      snapshot: JSON.stringify(stored(next)),
      operation: operationOf(actions),
      error: next.context.error,
      ...(event.type === 'EFFECTS_APPLIED' && event.schemaVersion !== undefined ? { schema_version: event.schemaVersion } : {}),
      ...opts.extra?.(state, tenant),
      // Back in use: the idle clock starts again.
      ...(state === 'active' ? { last_active_at: new Date() } : {}),
    })
    if (!updated) throw concurrentChange()
    await appendEvent(trx, {
      tenant_id: tenant.id,
      type: event.type,
      from_state: tenant.state,
      to_state: state,
      actor: opts.actor,
      data: { ...eventData(event), ...opts.data },
    })
    await writeOutbox(trx, outboxRows(updated, actions))
    // Gone for good: no grant, denial or main tenant may point at it any more.
    if (state === 'wiped') await forgetTenant(trx, tenant.id, tenant.slug)
    return updated
  })
}

/** The step a transition starts, if it enters a transitional state. */
function operationOf(actions: Action[]): Step | null {
  const job = actions.find((a) => a.type === 'runJob')
  return (job?.params as { step?: Step } | undefined)?.step ?? null
}

function eventData(event: LifecycleEvent): Record<string, unknown> {
  const { type: _type, ...rest } = event
  return rest
}
