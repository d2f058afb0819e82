// Request and response schemas of the tenant routes.
import { Type, type Static } from '@fastify/type-provider-typebox'
import { SLUG_PATTERN } from '../tenancy/identifiers.js'
import { METADATA_MAX_BYTES, METADATA_MAX_DEPTH } from './metadata.js'

export const TenantRef = Type.Object({
  id: Type.String({ minLength: 1, maxLength: 64, description: 'The tenant uuid or slug' }),
})

export const CreateTenantBody = Type.Object(
  {
    slug: Type.String({ pattern: SLUG_PATTERN, description: 'Names the tenant database: ${TENANT_DB_PREFIX}${slug}' }),
    name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    plan: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    region: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    metadata: Type.Optional(
      Type.Record(Type.String({ maxLength: 64 }), Type.Unknown(), {
        maxProperties: 50,
        description: `Free-form JSON copied into webhooks: at most 50 keys, nested at most ${METADATA_MAX_DEPTH} levels deep (this object being the first), at most ${METADATA_MAX_BYTES / 1024} KiB as JSON; no NUL characters or lone surrogates`,
      }),
    ),
  },
  { additionalProperties: false },
)
export type CreateTenantBody = Static<typeof CreateTenantBody>

export const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(t: T) => Type.Union([t, Type.Null()])

export const TenantResource = Type.Object({
  id: Type.String({ format: 'uuid' }),
  slug: Type.String(),
  name: Nullable(Type.String()),
  plan: Nullable(Type.String()),
  region: Nullable(Type.String()),
  metadata: Type.Record(Type.String(), Type.Unknown()),
  state: Type.String(),
  stable: Type.Boolean({ description: 'True once the infrastructure matches the state' }),
  schema_version: Nullable(Type.Integer()),
  migration_error: Nullable(Type.String({ description: 'The last tenant migration failure, until a migration succeeds' })),
  quarantined_at: Nullable(
    Type.String({ format: 'date-time', description: 'Set after FLEET_QUARANTINE_AFTER failed migrations in a row: left out of fleet migrations until retried by name' }),
  ),
  operation: Nullable(Type.String({ description: 'The background step in flight, if any' })),
  error: Nullable(Type.String()),
  cluster: Type.String(),
  database: Type.String(),
  wipe_after: Nullable(Type.String({ format: 'date-time' })),
  legal_hold: Nullable(
    Type.Object({ reason: Nullable(Type.String()), placed_at: Type.String({ format: 'date-time' }), placed_by: Nullable(Type.String()) }),
  ),
  created_at: Type.String({ format: 'date-time' }),
  updated_at: Type.String({ format: 'date-time' }),
})

export const TenantStatus = Type.Object({
  id: Type.String({ format: 'uuid' }),
  slug: Type.String(),
  state: Type.String(),
  stable: Type.Boolean(),
  schema_version: Nullable(Type.Integer()),
  operation: Nullable(Type.String()),
  error: Nullable(Type.String()),
})

export const ListTenantsQuery = Type.Object(
  {
    state: Type.Optional(Type.String({ maxLength: 32 })),
    plan: Type.Optional(Type.String({ maxLength: 64 })),
    // Optional with a default: ajv fills it in, and the document does not make clients send it.
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 20 })),
    cursor: Type.Optional(Type.String({ maxLength: 64 })),
  },
  { additionalProperties: false },
)

export const TenantList = Type.Object({
  items: Type.Array(TenantResource),
  next_cursor: Nullable(Type.String()),
})

export const EventsQuery = Type.Object(
  {
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 100 })),
    cursor: Type.Optional(Type.String({ maxLength: 64 })),
  },
  { additionalProperties: false },
)

export const TenantEventResource = Type.Object({
  id: Type.String(),
  type: Type.String(),
  from_state: Nullable(Type.String()),
  to_state: Nullable(Type.String()),
  actor: Type.String(),
  data: Type.Record(Type.String(), Type.Unknown()),
  created_at: Type.String({ format: 'date-time' }),
})

export const EventList = Type.Object({
  items: Type.Array(TenantEventResource),
  next_cursor: Nullable(Type.String()),
})

export const SuspendBody = Type.Object({ reason: Type.Optional(Type.String({ maxLength: 500 })) }, { additionalProperties: false })

export const DecommissionQuery = Type.Object(
  {
    retention: Type.Optional(
      Type.String({ maxLength: 32, description: 'ISO 8601 duration the data is kept (default WIPE_RETENTION); PT0S wipes now' }),
    ),
  },
  { additionalProperties: false },
)

export const LegalHoldBody = Type.Object({ reason: Type.String({ minLength: 1, maxLength: 500 }) }, { additionalProperties: false })

export const CredentialsResource = Type.Object({
  username: Type.String(),
  password: Type.String({ description: 'Shown only in this response' }),
  host: Type.String(),
  port: Type.Integer(),
  database: Type.String(),
  expires_at: Type.String({ format: 'date-time' }),
  lease_id: Type.String({ description: "The lease: a uuid (local backend) or Vault's lease id" }),
})

export const ConnectionResource = Type.Object({
  host: Type.String(),
  port: Type.Integer(),
  database: Type.String(),
  state: Type.String(),
  accepts_connections: Type.Boolean({ description: 'False while suspended, hibernated or decommissioned' }),
  schema_version: Nullable(Type.Integer()),
  credentials: Type.Object({
    source: Type.String({ description: 'The secrets backend that issues logins: local or vault' }),
    path: Type.Optional(Type.String({ description: "With Vault: the path of the tenant's dynamic credentials (database/creds/<role>)" })),
    endpoint: Type.String({ description: 'POST here for short-lived login credentials' }),
    ttl_seconds: Type.Integer(),
  }),
})
