// Table types of the control-plane database, one interface per table.
import type { ColumnType, Generated, Insertable, Selectable, Updateable } from 'kysely'
import type { Step, TenantState } from '../lifecycle/events.js'

type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>
type Json<T> = ColumnType<T, string | T, string | T>

export interface TenantTable {
  id: Generated<string>
  seq: ColumnType<string, never, never>
  slug: string
  name: string | null
  plan: string | null
  region: string | null
  metadata: Json<Record<string, unknown>>
  cluster: Generated<string>
  database_name: string
  owner_role: string
  state: TenantState
  snapshot: Json<unknown>
  version: Generated<number>
  schema_version: number | null
  /** The step in flight while the state is transitional. */
  operation: Step | null
  error: string | null
  wipe_after: Date | null
  legal_hold_reason: string | null
  legal_hold_at: Date | null
  legal_hold_by: string | null
  /** Sessions counted in pg_stat_database at the last hibernation sweep. */
  activity_counter: string | null
  last_active_at: Timestamp
  /** Failed migration attempts in a row; reset by a success. */
  migration_failures: Generated<number>
  /** The last migration failure, until a migration succeeds. */
  migration_error: string | null
  /** Set once migration_failures reaches FLEET_QUARANTINE_AFTER: left out of runs until retried by name. */
  quarantined_at: Date | null
  created_at: Timestamp
  updated_at: Timestamp
}

export interface TenantKeyTable {
  tenant_id: string
  /** The tenant's data key, AES-256-GCM-wrapped by the master key; null once destroyed. */
  wrapped_key: Buffer | null
  created_at: Timestamp
  destroyed_at: Date | null
}

export interface LeaseTable {
  id: Generated<string>
  tenant_id: string
  backend: string
  username: string
  principal: string
  idempotency_key: string | null
  /** The password, encrypted under the tenant's data key (or its Vault transit key), for idempotent replays. */
  secret: Buffer | null
  /** The lease id of an external backend (Vault's `database/creds/<role>/<id>`); null for local leases. */
  external_id: Generated<string | null>
  expires_at: Date
  created_at: Timestamp
  revoked_at: Date | null
}

export interface TenantEventTable {
  id: ColumnType<string, never, never>
  tenant_id: string
  type: string
  from_state: string | null
  to_state: string | null
  actor: string
  data: Json<Record<string, unknown>>
  created_at: Timestamp
}

export type FleetRunStatus = 'running' | 'completed' | 'completed_with_errors' | 'stopped' | 'cancelled'
export type FleetItemStatus = 'pending' | 'queued' | 'running' | 'succeeded' | 'failed' | 'skipped' | 'deferred'

/** A tenant migration file as a run saw it at its start. */
export interface RunFile {
  version: number
  name: string
  checksum: string
}

export interface FleetMigrationTable {
  id: Generated<string>
  seq: ColumnType<string, never, never>
  status: Generated<FleetRunStatus>
  target_version: number
  files: Json<RunFile[]>
  /** The selection: these slugs, or this plan, or (both null) every tenant. */
  tenants: string[] | null
  plan: string | null
  concurrency: number
  canary: Generated<number>
  on_error: 'continue' | 'stop'
  dry_run: Generated<boolean>
  stop_reason: string | null
  requested_by: string
  created_at: Timestamp
  retried_at: Date | null
  /** Set once nothing is in flight any more: the run is over. */
  finished_at: Date | null
}

export interface FleetMigrationTenantTable {
  run_id: string
  tenant_id: string
  /** Scheduling order; canaries first. */
  ordinal: number
  slug: string
  canary: Generated<boolean>
  status: FleetItemStatus
  /** Why a tenant was skipped or deferred. */
  reason: string | null
  from_version: number | null
  to_version: number | null
  failed_version: number | null
  error: string | null
  attempts: Generated<number>
  started_at: Date | null
  finished_at: Date | null
}

export interface OutboxTable {
  id: Generated<string>
  seq: ColumnType<string, never, never>
  /** job: a lifecycle job; fleet: one tenant of a fleet migration; webhook: an event for billing; dispatch: wake webhook delivery. */
  kind: 'job' | 'fleet' | 'webhook' | 'dispatch'
  name: string
  tenant_id: string | null
  payload: Json<Record<string, unknown>>
  created_at: Timestamp
  relayed_at: Date | null
  /** Set once a webhook event has a delivery row for every subscribed endpoint. */
  fanned_out_at: Date | null
}

export interface WebhookEndpointTable {
  id: Generated<string>
  url: string
  description: string | null
  /** null: every event type. */
  event_types: string[] | null
  /** The whsec_ signing secret, AES-256-GCM-sealed by the master key. */
  secret: Buffer
  /** 'config' for the endpoint BILLING_WEBHOOK_URL defines. */
  managed_by: string | null
  /** The principal that registered it: it receives only what that principal may see. Null: everything. */
  owner: Generated<string | null>
  enabled: Generated<boolean>
  disabled_at: Date | null
  disabled_reason: string | null
  failing_since: Date | null
  created_at: Timestamp
  updated_at: Timestamp
  deleted_at: Date | null
}

export interface WebhookEndpointEventTable {
  id: ColumnType<string, never, never>
  endpoint_id: string
  type: string
  actor: string
  data: Json<Record<string, unknown>>
  created_at: Timestamp
}

export type DeliveryStatus = 'pending' | 'delivering' | 'succeeded' | 'failed'

export interface WebhookDeliveryTable {
  id: Generated<string>
  endpoint_id: string
  /** The outbox row: its id is the stable `webhook-id`. */
  event_id: string
  event_type: string
  tenant_id: string | null
  /** The outbox sequence: one tenant's events reach an endpoint in this order. */
  seq: string
  status: Generated<DeliveryStatus>
  attempts: Generated<number>
  next_attempt_at: Timestamp
  locked_until: Date | null
  /** The current attempt's claim: outcomes are written only while it holds. */
  claim_token: string | null
  last_status_code: number | null
  last_error: string | null
  created_at: Timestamp
  delivered_at: Date | null
}

export interface WebhookAttemptTable {
  id: ColumnType<string, never, never>
  delivery_id: string
  attempted_at: Timestamp
  status_code: number | null
  duration_ms: number
  response_excerpt: string | null
  error: string | null
}

export interface IdempotencyKeyTable {
  principal: string
  key: string
  request_hash: string
  status_code: number | null
  response: Json<unknown> | null
  location: string | null
  created_at: Timestamp
}

export interface ApiKeyTable {
  id: Generated<string>
  principal: string
  key_hash: string
  /** Made from LANDLORD_ADMIN_KEY, or generated at first start. */
  bootstrap: Generated<boolean>
  name: string | null
  expires_at: Date | null
  /** Updated at most once a minute. */
  last_used_at: Date | null
  created_at: Timestamp
  revoked_at: Date | null
}

export interface AuditLogTable {
  seq: string
  at: Date
  principal: string | null
  key_id: string | null
  tenant_id: string | null
  tenant: string | null
  action: string
  request_id: string | null
  route: string | null
  status: number | null
  outcome: string
  source: string | null
  data: Record<string, unknown>
  prev_hash: string
  hash: string
}

export interface PrincipalTable {
  name: string
  scopes: string[]
  /** Granted every tenant (`*`), less its denials. */
  all_tenants: Generated<boolean>
  main_tenant: string | null
  /** Why the main tenant was cleared (it was wiped), until another is set. */
  main_tenant_lost: string | null
  description: string | null
  created_at: Timestamp
  updated_at: Timestamp
}

export interface PrincipalTenantTable {
  principal: string
  tenant_id: string
  created_at: Timestamp
}

export interface SettingTable {
  name: string
  value: Buffer
  created_at: Timestamp
}

export interface Database {
  tenants: TenantTable
  tenant_events: TenantEventTable
  outbox: OutboxTable
  idempotency_keys: IdempotencyKeyTable
  api_keys: ApiKeyTable
  tenant_keys: TenantKeyTable
  leases: LeaseTable
  webhook_endpoints: WebhookEndpointTable
  webhook_endpoint_events: WebhookEndpointEventTable
  webhook_deliveries: WebhookDeliveryTable
  webhook_attempts: WebhookAttemptTable
  landlord_settings: SettingTable
  fleet_migrations: FleetMigrationTable
  fleet_migration_tenants: FleetMigrationTenantTable
  audit_log: AuditLogTable
  principals: PrincipalTable
  principal_grants: PrincipalTenantTable
  principal_denials: PrincipalTenantTable
}

export type Tenant = Selectable<TenantTable>
export type NewTenant = Insertable<TenantTable>
export type TenantUpdate = Updateable<TenantTable>
export type TenantEvent = Selectable<TenantEventTable>
export type NewOutboxRow = Insertable<OutboxTable>
export type FleetRun = Selectable<FleetMigrationTable>
export type FleetItem = Selectable<FleetMigrationTenantTable>
export type Principal = Selectable<PrincipalTable>
export type ApiKey = Selectable<ApiKeyTable>
