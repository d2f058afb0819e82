// Request and response schemas of the webhook routes.
import { Type } from '@fastify/type-provider-typebox'
import { WEBHOOK_EVENT_TYPES } from '../lifecycle/events.js'
import { Nullable } from './tenants.schemas.js'

const EventType = Type.Union(WEBHOOK_EVENT_TYPES.map((e) => Type.Literal(e)))

export const EndpointRef = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) })

export const CreateEndpointBody = Type.Object(
  {
    url: Type.String({ minLength: 1, maxLength: 2048 }),
    event_types: Type.Optional(Type.Array(EventType, { minItems: 1, uniqueItems: true, description: 'Omit for every event type' })),
    description: Type.Optional(Type.String({ maxLength: 500 })),
  },
  { additionalProperties: false },
)

export const UpdateEndpointBody = Type.Object(
  {
    enabled: Type.Optional(Type.Boolean()),
    url: Type.Optional(Type.String({ minLength: 1, maxLength: 2048 })),
    event_types: Type.Optional(Nullable(Type.Array(EventType, { minItems: 1, uniqueItems: true }))),
    description: Type.Optional(Type.String({ maxLength: 500 })),
  },
  { additionalProperties: false, minProperties: 1 },
)

export const EndpointResource = Type.Object({
  id: Type.String({ format: 'uuid' }),
  url: Type.String(),
  description: Nullable(Type.String()),
  event_types: Nullable(Type.Array(Type.String())),
  enabled: Type.Boolean(),
  disabled_reason: Nullable(Type.String()),
  disabled_at: Nullable(Type.String({ format: 'date-time' })),
  failing_since: Nullable(Type.String({ format: 'date-time' })),
  managed_by: Nullable(Type.String({ description: '"config" for the endpoint of BILLING_WEBHOOK_URL' })),
  created_at: Type.String({ format: 'date-time' }),
})

export const CreatedEndpoint = Type.Intersect([
  EndpointResource,
  Type.Object({ secret: Type.String({ description: 'whsec_ signing secret, shown only in this response' }) }),
])

export const EndpointDetail = Type.Intersect([
  EndpointResource,
  Type.Object({
    events: Type.Array(
      Type.Object({ type: Type.String(), actor: Type.String(), data: Type.Record(Type.String(), Type.Unknown()), created_at: Type.String({ format: 'date-time' }) }),
    ),
  }),
])

export const EndpointList = Type.Object({ items: Type.Array(EndpointResource) })

export const DeliveriesQuery = Type.Object(
  {
    status: Type.Optional(Type.Union([Type.Literal('pending'), Type.Literal('delivering'), Type.Literal('succeeded'), Type.Literal('failed')])),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 20 })),
    cursor: Type.Optional(Type.String({ maxLength: 64 })),
  },
  { additionalProperties: false },
)

export const DeliveryResource = Type.Object({
  id: Type.String({ format: 'uuid' }),
  endpoint_id: Type.String({ format: 'uuid' }),
  webhook_id: Type.String({ description: 'The webhook-id header: the same on every attempt' }),
  event_type: Type.String(),
  tenant_id: Nullable(Type.String()),
  status: Type.String(),
  attempts: Type.Integer(),
  next_attempt_at: Nullable(Type.String({ format: 'date-time', description: 'Set while the delivery is pending' })),
  last_status_code: Nullable(Type.Integer()),
  last_error: Nullable(Type.String()),
  created_at: Type.String({ format: 'date-time' }),
  delivered_at: Nullable(Type.String({ format: 'date-time' })),
  attempt_log: Type.Array(
    Type.Object({
      attempted_at: Type.String({ format: 'date-time' }),
      status_code: Nullable(Type.Integer()),
      duration_ms: Type.Integer(),
      response_excerpt: Nullable(Type.String()),
      error: Nullable(Type.String()),
    }),
  ),
})

export const DeliveryList = Type.Object({ items: Type.Array(DeliveryResource), next_cursor: Nullable(Type.String()) })
