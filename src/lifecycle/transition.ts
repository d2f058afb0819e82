// The only writer of tenant state. Every change is one Postgres transaction:
// lock the row, check the event against the statechart, write state + snapshot
// with an optimistic version check, append a history row, and write one outbox
// row per effect. The relay later hands outbox rows to BullMQ, so a crash
// between commit and enqueue loses nothing.
import { sql, type Transaction } from 'kysely'
import { initialTransition, transition } from 'xstate'
import type { Db } from '../db/index.js'
import type { Database, NewOutboxRow, Tenant } from '../db/schema.js'
import { getTenant } from '../db/tenants.js'
import { concurrentChange, eventNotAllowed, invalidSlug, legalHoldBlocks, slugTaken } from '../errors.js'
import { slugProblem, tenantNames } from '../tenancy/identifiers.js'
import { OPERATOR_EVENTS, isStable, type LifecycleEvent, type Step } from './events.js'
import { tenantMachine, type TenantContext } from './machine.js'

export const OUTBOX_CHANNEL = 'landlord_outbox'

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

export function restore(tenant: Pick<Tenant, 'snapshot' | 'schema_version'>): Snapshot {
  const s = tenant.snapshot as Stored
  // Snapshots stored before `provisioned` existed: a tenant with a schema version finished provisioning.
  const provisioned = s.context.provisioned ?? tenant.schema_version !== null
  return tenantMachine.resolveState({ value: s.value, context: { ...s.context, provisioned } })
}

/** Operator events the statechart accepts from this snapshot. */
export function allowedEvents(snapshot: Snapshot): string[] {
  return OPERATOR_EVENTS.filter((type) =>
    type === 'DECOMMISSION'
      ? snapshot.can({ type, retentionMs: 0 }) || snapshot.can({ type, retentionMs: 1 })
      : snapshot.can({ type }),
  )
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

export async function writeOutbox(trx: Transaction<Database>, rows: NewOutboxRow[]): Promise<void> {
  if (rows.length === 0) return
  await trx
    .insertInto('outbox')
    .values(rows.map((r) => ({ ...r, payload: JSON.stringify(r.payload) })))
    .execute()
  // Delivered at commit: wakes the relay without waiting for its next poll.
  await sql`SELECT pg_notify(${OUTBOX_CHANNEL}, '')`.execute(trx)
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
  await db
    .insertInto('tenant_events')
    .values({ tenant_id: tenant.id, type, from_state: tenant.state, to_state: tenant.state, actor, data: JSON.stringify(data) })
    .execute()
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
    const tenant = await trx
      .insertInto('tenants')
      .values({
        slug: input.slug,
        name: input.name ?? null,
        plan: input.plan ?? null,
        region: input.region ?? null,
        metadata: JSON.stringify(input.metadata ?? {}),
        database_name: names.database,
        owner_role: names.owner,
        state: snapshot.value as string,
        snapshot: JSON.stringify(stored(snapshot)),
        operation: 'provision',
      })
      .onConflict((oc) => oc.column('slug').doNothing())
      .returningAll()
      .executeTakeFirst()
    if (!tenant) throw slugTaken(input.slug)
    await trx
      .insertInto('tenant_events')
      .values({ tenant_id: tenant.id, type: 'CREATE', from_state: null, to_state: tenant.state, actor, data: '{}' })
      .execute()
    await writeOutbox(trx, outboxRows(tenant, actions))
    await within?.(trx, tenant)
    return tenant
  })
}

export interface ApplyOptions {
  actor: string
  /** Workers pass the state they worked for: a stale report is then ignored, not an error. */
  expectState?: string
  /** With expectState: the version the job was queued at; a report from an older run is ignored. */
  expectVersion?: number
  /** Checks on the locked row before the event is applied (throw to refuse). */
  check?: (tenant: Tenant) => void
  /** Extra columns to write with the transition (e.g. `wipe_after`). */
  extra?: (next: string, event: LifecycleEvent) => Partial<Pick<Tenant, 'wipe_after'>>
  data?: Record<string, unknown>
}

/**
 * Applies one event to one tenant. Throws 404 for an unknown tenant and 409
 * (with the allowed events) for an event the statechart refuses. Returns
 * undefined when `expectState` no longer holds.
 */
export async function applyEvent(db: Db, ref: string, event: LifecycleEvent, opts: ApplyOptions): Promise<Tenant | undefined> {
  return db.transaction().execute(async (trx) => {
    const tenant = await getTenant(trx, ref, { forUpdate: true })
    if (opts.expectState !== undefined && tenant.state !== opts.expectState) return undefined
    if (opts.expectVersion !== undefined && tenant.version !== opts.expectVersion) return undefined
    opts.check?.(tenant)
    const wipes =
      event.type === 'WIPE' ||
      (event.type === 'DECOMMISSION' && event.retentionMs === 0) ||
      (event.type === 'RETRY' && (tenant.snapshot as Stored).context.failedDuring === 'wiping')
    if (wipes && tenant.legal_hold_at !== null) throw legalHoldBlocks(tenant.legal_hold_reason)
    const current = restore(tenant)
    if (!current.can(event)) throw eventNotAllowed(event.type, tenant.state, allowedEvents(current))
    const [next, actions] = transition(tenantMachine, current, event)
    const state = next.value as string
    const updated = await trx
      .updateTable('tenants')
      .set({
        state,
        snapshot: JSON.stringify(stored(next)),
        version: tenant.version + 1,
        operation: isStable(state) ? null : operationOf(actions),
        error: next.context.error,
        ...(event.type === 'EFFECTS_APPLIED' && event.schemaVersion !== undefined ? { schema_version: event.schemaVersion } : {}),
        ...opts.extra?.(state, event),
        // Back in use: the idle clock starts again.
        ...(state === 'active' ? { last_active_at: sql<Date>`now()` } : {}),
        updated_at: sql<Date>`now()`,
      })
      .where('id', '=', tenant.id)
      .where('version', '=', tenant.version)
      .returningAll()
      .executeTakeFirst()
    if (!updated) throw concurrentChange()
    await trx
      .insertInto('tenant_events')
      .values({
        tenant_id: tenant.id,
        type: event.type,
        from_state: tenant.state,
        to_state: state,
        actor: opts.actor,
        data: JSON.stringify({ ...eventData(event), ...opts.data }),
      })
      .execute()
    await writeOutbox(trx, outboxRows(updated, actions))
    return updated
  })
}

function operationOf(actions: Action[]): string | null {
  const job = actions.find((a) => a.type === 'runJob')
  return (job?.params as { step?: string } | undefined)?.step ?? null
}

function eventData(event: LifecycleEvent): Record<string, unknown> {
  const { type: _type, ...rest } = event
  return rest
}
