// Webhook endpoint routes and the delivery log.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { pageDeliveries, type DeliveryWithAttempts } from '../db/deliveries.js'
import { endpointEvents, getEndpoint, listEndpoints, type Endpoint } from '../db/endpoints.js'
import { seesEveryTenant } from '../access/access.js'
import { addressPolicy } from '../webhooks/address.js'
import { createEndpoint, deleteEndpoint, retryDelivery, updateEndpoint } from '../webhooks/endpoints.js'
import type { ApiDeps } from './deps.js'
import { decodeCursor, encodeCursor } from './cursor.js'
import { problems } from './problem.js'
import {
  CreateEndpointBody,
  CreatedEndpoint,
  DeliveriesQuery,
  DeliveryList,
  DeliveryResource,
  EndpointDetail,
  EndpointList,
  EndpointRef,
  EndpointResource,
  UpdateEndpointBody,
} from './webhooks.schemas.js'

const iso = (d: Date | null) => d?.toISOString() ?? null

/** Never the secret: it is shown once, by the route that creates it. */
function endpointResource(e: Endpoint) {
  return {
    id: e.id,
    url: e.url,
    description: e.description,
    event_types: e.event_types,
    enabled: e.enabled,
    disabled_reason: e.disabled_reason,
    disabled_at: iso(e.disabled_at),
    failing_since: iso(e.failing_since),
    managed_by: e.managed_by,
    created_at: e.created_at.toISOString(),
  }
}

function deliveryResource(d: DeliveryWithAttempts) {
  return {
    id: d.id,
    endpoint_id: d.endpoint_id,
    webhook_id: `msg_${d.event_id}`,
    event_type: d.event_type,
    tenant_id: d.tenant_id,
    status: d.status,
    attempts: d.attempts,
    next_attempt_at: d.status === 'pending' ? d.next_attempt_at.toISOString() : null,
    last_status_code: d.last_status_code,
    last_error: d.last_error,
    created_at: d.created_at.toISOString(),
    delivered_at: iso(d.delivered_at),
    attempt_log: d.attempt_log.map((a) => ({
      attempted_at: a.attempted_at.toISOString(),
      status_code: a.status_code,
      duration_ms: a.duration_ms,
      response_excerpt: a.response_excerpt,
      error: a.error,
    })),
  }
}

const webhookRoutes: FastifyPluginAsyncTypebox<ApiDeps> = async (app, { config, db, masterKey }) => {
  const tags = ['webhooks']
  // Which addresses a registered URL may point at (SSRF): public ones, plus WEBHOOK_ALLOWED_NETWORKS.
  const policy = addressPolicy(config.webhookAllowedNetworks)

  app.post(
    '/webhook-endpoints',
    {
      schema: {
        tags,
        operationId: 'createWebhookEndpoint',
        summary: 'Register an endpoint; the response holds its signing secret, shown only once',
        body: CreateEndpointBody,
        response: { 201: CreatedEndpoint, ...problems(400, 401) },
      },
    },
    async (request, reply) => {
      const { endpoint, secret } = await createEndpoint(db, masterKey, policy, request.body, request.principal)
      return reply.code(201).header('location', `/webhook-endpoints/${endpoint.id}`).header('cache-control', 'no-store').send({ ...endpointResource(endpoint), secret })
    },
  )

  app.get(
    '/webhook-endpoints',
    {
      schema: {
        tags,
        operationId: 'listWebhookEndpoints',
        summary: 'Every webhook endpoint, enabled or not; never their secrets',
        response: { 200: EndpointList, ...problems(401) },
      },
    },
    // A principal that does not see every tenant sees the endpoints it made only.
    async (request) => ({ items: (await listEndpoints(db, seesEveryTenant(request.access.visible) ? undefined : request.principal)).map(endpointResource) }),
  )

  app.get(
    '/webhook-endpoints/:id',
    {
      schema: {
        tags,
        operationId: 'getWebhookEndpoint',
        summary: 'One endpoint, with why it was disabled and its recent events',
        params: EndpointRef,
        response: { 200: EndpointDetail, ...problems(401, 404) },
      },
    },
    async (request) => {
      const endpoint = await getEndpoint(db, request.params.id)
      const events = await endpointEvents(db, endpoint.id)
      return {
        ...endpointResource(endpoint),
        events: events.map((e) => ({ type: e.type, actor: e.actor, data: e.data, created_at: e.created_at.toISOString() })),
      }
    },
  )

  app.patch(
    '/webhook-endpoints/:id',
    {
      schema: {
        tags,
        operationId: 'updateWebhookEndpoint',
        summary: 'Enable or disable an endpoint, or change its URL, description or event types',
        params: EndpointRef,
        body: UpdateEndpointBody,
        response: { 200: EndpointResource, ...problems(400, 401, 404) },
      },
    },
    async (request) => endpointResource(await updateEndpoint(db, policy, request.params.id, request.body, request.principal)),
  )

  app.delete(
    '/webhook-endpoints/:id',
    {
      schema: {
        tags,
        operationId: 'deleteWebhookEndpoint',
        summary: 'Remove an endpoint; the one BILLING_WEBHOOK_URL manages cannot be deleted here',
        params: EndpointRef,
        response: { 204: { type: 'null', description: 'Deleted' }, ...problems(401, 404, 409) },
      },
    },
    async (request, reply) => {
      await deleteEndpoint(db, request.params.id, request.principal)
      return reply.code(204).send(null)
    },
  )

  app.get(
    '/webhook-endpoints/:id/deliveries',
    {
      schema: {
        tags,
        operationId: 'listWebhookDeliveries',
        summary: 'The delivery log: attempts, status codes, durations, response excerpts, next attempt',
        params: EndpointRef,
        querystring: DeliveriesQuery,
        response: { 200: DeliveryList, ...problems(400, 401, 404) },
      },
    },
    async (request) => {
      const { status, limit = 20, cursor } = request.query // the schema's default, for the type (ajv applies it)
      const before = decodeCursor(cursor)
      const endpoint = await getEndpoint(db, request.params.id)
      const page = await pageDeliveries(db, endpoint.id, { status, limit, before, visible: request.access.visible })
      return { items: page.items.map(deliveryResource), next_cursor: encodeCursor(page.last) }
    },
  )

  app.post(
    '/webhook-deliveries/:id/retry',
    {
      schema: {
        tags,
        operationId: 'retryWebhookDelivery',
        summary: 'Send a failed (or delivered) event again, now',
        params: EndpointRef,
        response: { 202: DeliveryResource, ...problems(401, 404, 409) },
      },
    },
    async (request, reply) => {
      const d = await retryDelivery(db, request.params.id, request.principal)
      return reply.code(202).send(deliveryResource({ ...d, attempt_log: [] }))
    },
  )
}

export default webhookRoutes
