// Tenant routes: onboarding, reading the registry, status and history.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { Tenant, TenantEvent } from '../db/schema.js'
import { getTenant, listTenants, tenantEvents } from '../db/tenants.js'
import { isTransitional } from '../lifecycle/states.js'
import { createTenant } from '../lifecycle/transition.js'
import type { ApiDeps } from './deps.js'
import { decodeCursor, encodeCursor } from './cursor.js'
import { assertMetadata } from './metadata.js'
import { problems } from './problem.js'
import {
  CreateTenantBody,
  EventList,
  EventsQuery,
  ListTenantsQuery,
  TenantList,
  TenantRef,
  TenantResource,
  TenantStatus,
} from './tenants.schemas.js'

export function tenantResource(t: Tenant) {
  return {
    id: t.id,
    slug: t.slug,
    name: t.name,
    plan: t.plan,
    region: t.region,
    metadata: t.metadata,
    state: t.state,
    stable: !isTransitional(t.state),
    schema_version: t.schema_version,
    migration_error: t.migration_error,
    quarantined_at: t.quarantined_at?.toISOString() ?? null,
    operation: t.operation,
    error: t.error,
    cluster: t.cluster,
    database: t.database_name,
    wipe_after: t.wipe_after?.toISOString() ?? null,
    legal_hold: t.legal_hold_at
      ? { reason: t.legal_hold_reason, placed_at: t.legal_hold_at.toISOString(), placed_by: t.legal_hold_by }
      : null,
    created_at: t.created_at.toISOString(),
    updated_at: t.updated_at.toISOString(),
  }
}

function eventResource(e: TenantEvent) {
  return { ...e, created_at: e.created_at.toISOString() }
}

const tenantsRoutes: FastifyPluginAsyncTypebox<ApiDeps> = async (app, { db, config }) => {
  app.post(
    '/tenants',
    {
      config: { idempotency: 'replay' },
      schema: {
        tags: ['tenants'],
        operationId: 'createTenant',
        summary: 'Onboard a tenant: its database is provisioned in the background',
        body: CreateTenantBody,
        response: { 202: TenantResource, ...problems(400, 401, 409, 422) },
      },
    },
    async (request, reply) => {
      assertMetadata(request.body.metadata)
      const claimed = request.idempotency?.mode === 'replay' ? request.idempotency : undefined
      // The replayable response is committed with the tenant itself.
      const tenant = await createTenant(
        db,
        config.tenantDbPrefix,
        request.body,
        request.principal,
        claimed && ((trx, t) => claimed.complete(trx, 202, tenantResource(t), `/tenants/${t.id}`)),
      )
      request.log.info({ tenantId: tenant.id }, 'tenant registered')
      return reply.code(202).header('location', `/tenants/${tenant.id}`).send(tenantResource(tenant))
    },
  )

  app.get(
    '/tenants',
    {
      schema: {
        tags: ['tenants'],
        operationId: 'listTenants',
        summary: 'List tenants, oldest first, one keyset page at a time',
        querystring: ListTenantsQuery,
        response: { 200: TenantList, ...problems(400, 401) },
      },
    },
    async (request) => {
      const { state, plan, limit = 20, cursor } = request.query // the schema's default, for the type (ajv applies it)
      const page = await listTenants(db, { state, plan, limit, after: decodeCursor(cursor), visible: request.access.visible })
      return { items: page.items.map(tenantResource), next_cursor: encodeCursor(page.last) }
    },
  )

  app.get(
    '/tenants/:id',
    {
      schema: {
        tags: ['tenants'],
        operationId: 'getTenant',
        summary: 'One tenant by uuid or slug',
        params: TenantRef,
        response: { 200: TenantResource, ...problems(401, 404) },
      },
    },
    async (request) => tenantResource(await getTenant(db, request.params.id)),
  )

  app.get(
    '/tenants/:id/status',
    {
      schema: {
        tags: ['tenants'],
        operationId: 'getTenantStatus',
        summary: 'Where the tenant is in its lifecycle; `stable` is true once the infrastructure matches',
        params: TenantRef,
        response: { 200: TenantStatus, ...problems(401, 404) },
      },
    },
    async (request) => {
      const t = await getTenant(db, request.params.id)
      return {
        id: t.id,
        slug: t.slug,
        state: t.state,
        stable: !isTransitional(t.state),
        schema_version: t.schema_version,
        operation: t.operation,
        error: t.error,
      }
    },
  )

  app.get(
    '/tenants/:id/events',
    {
      schema: {
        tags: ['tenants'],
        operationId: 'listTenantEvents',
        summary: 'Lifecycle and audit history, oldest first',
        params: TenantRef,
        querystring: EventsQuery,
        response: { 200: EventList, ...problems(400, 401, 404) },
      },
    },
    async (request) => {
      const tenant = await getTenant(db, request.params.id)
      const { limit = 100, cursor } = request.query // the schema's default, for the type (ajv applies it)
      const events = await tenantEvents(db, tenant.id, limit + 1, decodeCursor(cursor))
      const items = events.slice(0, limit)
      return {
        items: items.map(eventResource),
        next_cursor: events.length > limit ? encodeCursor(items[items.length - 1]?.id) : null,
      }
    },
  )
}

export default tenantsRoutes
