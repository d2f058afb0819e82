// The audit trail of the API: every mutating request (POST, PUT, PATCH,
// DELETE) appends a row before its answer leaves, refused ones included, naming the
// principal and key, the tenant the route acted on, the request id, route,
// status and source address. GET /audit (admin) reads the trail.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@fastify/type-provider-typebox'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { canSee } from '../access/access.js'
import { appendAudit, pageAudit } from '../db/audit.js'
import type { Db } from '../db/index.js'
import { findTenant } from '../db/tenants.js'
import { tenantNotFound } from '../errors.js'
import { decodeCursor, encodeCursor } from './cursor.js'
import type { ApiDeps } from './deps.js'
import { problems } from './problem.js'
import { Nullable } from './tenants.schemas.js'

const MUTATING = new Set(['POST', 'PUT', 'PATCH', 'DELETE'])

async function auditTrail(app: FastifyInstance, opts: { db: Db }) {
  // onSend, not onResponse: a client that has its answer finds the row written.
  app.addHook('onSend', async (request, reply, payload) => {
    const status = reply.statusCode
    // A request over the rate limit did nothing; recording it would let a flood grow the trail.
    if (!MUTATING.has(request.method) || request.is404 || request.routeOptions.config.public || status === 429) return payload
    await appendAudit(opts.db, {
      principal: request.principal || null,
      keyId: request.access?.keyId ?? null,
      tenantId: request.auditTenant?.id ?? null,
      tenant: request.auditTenant?.slug ?? null,
      action: request.routeOptions.schema?.operationId ?? `${request.method} ${request.routeOptions.url ?? ''}`,
      requestId: request.id,
      route: `${request.method} ${request.routeOptions.url ?? request.url}`,
      status,
      outcome: status < 400 ? 'ok' : status < 500 ? 'refused' : 'failed',
      source: request.ip,
    }).catch((err: unknown) => request.log.error({ err }, 'audit row not written'))
    return payload
  })
}

export const auditPlugin = fp(auditTrail, { name: 'audit', dependencies: ['auth'] })

const AuditQuery = Type.Object(
  {
    tenant: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'A tenant id or slug (wiped ones too)' })),
    principal: Type.Optional(Type.String({ minLength: 1, maxLength: 63 })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 100 })),
    cursor: Type.Optional(Type.String({ maxLength: 64 })),
  },
  { additionalProperties: false },
)

const AuditRow = Type.Object({
  seq: Type.String({ description: 'Position in the chain' }),
  at: Type.String({ format: 'date-time' }),
  principal: Nullable(Type.String()),
  key_id: Nullable(Type.String({ format: 'uuid' })),
  tenant_id: Nullable(Type.String({ format: 'uuid' })),
  tenant: Nullable(Type.String()),
  action: Type.String({ description: 'The operationId of a request, or a lifecycle event' }),
  request_id: Nullable(Type.String()),
  route: Nullable(Type.String()),
  status: Nullable(Type.Integer()),
  outcome: Type.String({ description: 'ok, refused (4xx) or failed (5xx)' }),
  source: Nullable(Type.String({ description: 'The client address' })),
  data: Type.Record(Type.String(), Type.Unknown()),
  prev_hash: Type.String(),
  hash: Type.String(),
})

export const auditRoutes: FastifyPluginAsyncTypebox<ApiDeps> = async (app, { db }) => {
  app.get(
    '/audit',
    {
      schema: {
        tags: ['access'],
        operationId: 'listAudit',
        summary: 'The audit trail, newest first: who did what to which tenant, from where',
        querystring: AuditQuery,
        response: { 200: Type.Object({ items: Type.Array(AuditRow), next_cursor: Nullable(Type.String()) }), ...problems(400, 401, 403, 404) },
      },
    },
    async (request) => {
      const { tenant: ref, principal, limit = 100, cursor } = request.query
      const tenant = ref === undefined ? undefined : await findTenant(db, ref)
      if (ref !== undefined && (!tenant || !canSee(request.access.visible, tenant.id))) throw tenantNotFound(ref)
      // An admin granted some tenants sees the trail of those (and of no tenant) only.
      const page = await pageAudit(db, { tenantId: tenant?.id, principal, limit, before: decodeCursor(cursor), visible: request.access.visible })
      return {
        items: page.items.map((r) => ({ ...r, at: r.at.toISOString(), data: r.data })),
        next_cursor: encodeCursor(page.last),
      }
    },
  )
}
