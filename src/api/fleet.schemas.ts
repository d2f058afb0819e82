// Request and response schemas of the fleet migration and fleet schema routes.
import { Type } from '@fastify/type-provider-typebox'
import { SLUG_PATTERN } from '../tenancy/identifiers.js'
import { Nullable } from './tenants.schemas.js'

const Slug = Type.String({ pattern: SLUG_PATTERN })

export const StartFleetMigrationBody = Type.Object(
  {
    target_version: Type.Optional(Type.Integer({ minimum: 1, maximum: 9999, description: 'Default: the highest version in the migrations folder' })),
    tenants: Type.Optional(Type.Array(Slug, { minItems: 1, maxItems: 10_000, description: 'Only these tenants (slugs); the first `canary` listed are the canaries' })),
    plan: Type.Optional(Type.String({ minLength: 1, maxLength: 100, description: 'Only tenants on this plan' })),
    concurrency: Type.Optional(
      Type.Integer({ minimum: 1, maximum: 64, description: 'Tenants migrated at once; default FLEET_MIGRATION_CONCURRENCY, capped by the cluster\'s free connections' }),
    ),
    canary: Type.Optional(Type.Integer({ minimum: 0, maximum: 1000, description: 'Migrate this many tenants first; if one fails the run stops before the rest' })),
    on_error: Type.Optional(Type.Union([Type.Literal('continue'), Type.Literal('stop')], { description: 'continue (default) or stop scheduling at the first failure' })),
    dry_run: Type.Optional(Type.Boolean({ description: 'Apply each tenant\'s pending migrations in a transaction that is rolled back' })),
  },
  { additionalProperties: false },
)

export const FleetMigrationRef = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) })

const L = Type.Literal
const RunStatus = Type.Union([L('running'), L('completed'), L('completed_with_errors'), L('stopped'), L('cancelled')])
const ItemStatus = Type.Union([L('pending'), L('queued'), L('running'), L('succeeded'), L('failed'), L('skipped'), L('deferred')])

export const Failure = Type.Object({
  tenant: Type.String({ description: 'The tenant\'s slug' }),
  version: Nullable(Type.Integer({ description: 'The migration that failed, when one did' })),
  error: Type.String(),
})

export const FleetMigrationResource = Type.Object({
  id: Type.String({ format: 'uuid' }),
  status: RunStatus,
  target_version: Type.Integer(),
  dry_run: Type.Boolean(),
  total: Type.Integer(),
  succeeded: Type.Integer(),
  failed: Type.Integer(),
  skipped: Type.Integer({ description: 'At the target already, quarantined, or provisioning (born at the head)' }),
  deferred: Type.Integer({ description: 'Not serving (suspended, hibernated, ...): migrated before it next reports active' }),
  pending: Type.Integer({ description: 'Not finished yet (running ones included)' }),
  running: Type.Integer(),
  started_at: Type.String({ format: 'date-time' }),
  finished_at: Nullable(Type.String({ format: 'date-time' })),
})

export const FleetMigrationDetail = Type.Intersect([
  FleetMigrationResource,
  Type.Object({
    selection: Type.Object({ tenants: Nullable(Type.Array(Type.String())), plan: Nullable(Type.String()) }),
    concurrency: Type.Integer({ description: 'As run: the request (or default) capped by the cluster\'s free connections' }),
    canary: Type.Integer(),
    on_error: Type.Union([Type.Literal('continue'), Type.Literal('stop')]),
    stop_reason: Nullable(Type.String()),
    requested_by: Type.String(),
    retried_at: Nullable(Type.String({ format: 'date-time' })),
    files: Type.Array(Type.Object({ version: Type.Integer(), name: Type.String(), checksum: Type.String() })),
    failures: Type.Array(Failure, { description: 'The first 100 failures; GET /fleet-migrations/{id}/tenants?status=failed pages through all' }),
  }),
])

export const FleetMigrationList = Type.Object({ items: Type.Array(FleetMigrationResource), next_cursor: Nullable(Type.String()) })

export const ListQuery = Type.Object(
  {
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 20 })),
    cursor: Type.Optional(Type.String({ maxLength: 64 })),
  },
  { additionalProperties: false },
)

export const ItemsQuery = Type.Object(
  {
    status: Type.Optional(ItemStatus),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 100 })),
    cursor: Type.Optional(Type.String({ maxLength: 64 })),
  },
  { additionalProperties: false },
)

export const ItemResource = Type.Object({
  tenant: Type.String({ description: 'The tenant\'s slug' }),
  tenant_id: Type.String({ format: 'uuid' }),
  status: ItemStatus,
  canary: Type.Boolean(),
  reason: Nullable(Type.String({ description: 'Why it was skipped or deferred' })),
  from_version: Nullable(Type.Integer()),
  to_version: Nullable(Type.Integer()),
  failed_version: Nullable(Type.Integer()),
  error: Nullable(Type.String()),
  attempts: Type.Integer(),
  started_at: Nullable(Type.String({ format: 'date-time' })),
  finished_at: Nullable(Type.String({ format: 'date-time' })),
})

export const ItemList = Type.Object({ items: Type.Array(ItemResource), next_cursor: Nullable(Type.String()) })

export const FleetSchema = Type.Object({
  head_version: Type.Integer({ description: 'The highest version in the migrations folder' }),
  tenants: Type.Integer({ description: 'Tenants not wiped' }),
  versions: Type.Array(Type.Object({ version: Nullable(Type.Integer()), tenants: Type.Integer() }), { description: 'Tenants per schema version, lowest first' }),
  laggards: Type.Array(
    Type.Object({
      id: Type.String({ format: 'uuid' }),
      slug: Type.String(),
      state: Type.String(),
      schema_version: Nullable(Type.Integer()),
      migration_error: Nullable(Type.String()),
      quarantined_at: Nullable(Type.String({ format: 'date-time' })),
    }),
    { description: 'Up to 100 tenants below the head version, furthest behind first' },
  ),
})
