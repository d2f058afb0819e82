// Transition routes: suspend, resume, hibernate, wake, retry, decommission,
// restore, and the legal hold that stops every wipe. The statechart they drive
// is in src/lifecycle/.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { parseIsoDuration } from '../duration.js'
import { invalidRetention } from '../errors.js'
import type { OperatorEvent } from '../lifecycle/events.js'
import { decommission, placeLegalHold, releaseLegalHold, requestEvent, restoreTenant } from '../lifecycle/operations.js'
import type { ApiDeps } from './deps.js'
import { problems } from './problem.js'
import { tenantResource } from './tenants.js'
import { DecommissionQuery, LegalHoldBody, SuspendBody, TenantRef, TenantResource } from './tenants.schemas.js'

// Ten years: a longer retention is a typo, not a policy.
const MAX_RETENTION_MS = 3650 * 86_400_000

const transitionRoutes: FastifyPluginAsyncTypebox<ApiDeps> = async (app, { db, config }) => {
  const simple: Array<[string, OperatorEvent['type'], string]> = [
    ['resume', 'RESUME', 'Accept connections again after a suspension'],
    ['hibernate', 'HIBERNATE', 'Release connections and credentials; the next credential request wakes the tenant'],
    ['wake', 'WAKE', 'Accept connections again after hibernation'],
    ['retry', 'RETRY', 'After a failure: run the step that failed again, from its last checkpoint'],
  ]

  app.patch(
    '/tenants/:id/suspend',
    {
      schema: {
        tags: ['lifecycle'],
        operationId: 'suspendTenant',
        summary: 'Refuse connections, end sessions and revoke credentials',
        params: TenantRef,
        body: SuspendBody,
        response: { 202: TenantResource, ...problems(400, 401, 404, 409) },
      },
      // The body is optional: a bare PATCH suspends without a reason.
      preValidation: async (request) => {
        request.body ??= {}
      },
    },
    async (request, reply) => {
      const reason = request.body.reason
      const tenant = await requestEvent(db, request.params.id, { type: 'SUSPEND', ...(reason ? { reason } : {}) }, request.principal)
      return reply.code(202).send(tenantResource(tenant))
    },
  )

  for (const [path, type, summary] of simple) {
    // RETRY is an action rather than a state to move to: POST, like restore.
    const method = path === 'retry' ? 'post' : 'patch'
    app[method](
      `/tenants/:id/${path}`,
      {
        schema: {
          tags: ['lifecycle'],
          operationId: `${path}Tenant`,
          summary,
          params: TenantRef,
          response: { 202: TenantResource, ...problems(401, 404, 409) },
        },
      },
      async (request, reply) => {
        const tenant = await requestEvent(db, request.params.id, { type } as OperatorEvent, request.principal)
        return reply.code(202).send(tenantResource(tenant))
      },
    )
  }

  app.delete(
    '/tenants/:id',
    {
      schema: {
        tags: ['lifecycle'],
        operationId: 'decommissionTenant',
        summary: 'Decommission: refuse connections and keep the data until wipe_after (retention=PT0S wipes now)',
        params: TenantRef,
        querystring: DecommissionQuery,
        response: { 202: TenantResource, ...problems(400, 401, 404, 409) },
      },
    },
    async (request, reply) => {
      const raw = request.query.retention
      const retentionMs = raw === undefined ? config.wipeRetentionMs : parseIsoDuration(raw)
      if (retentionMs === undefined || retentionMs > MAX_RETENTION_MS) {
        throw invalidRetention(raw)
      }
      const tenant = await decommission(db, request.params.id, retentionMs, request.principal)
      return reply.code(202).send(tenantResource(tenant))
    },
  )

  app.post(
    '/tenants/:id/restore',
    {
      schema: {
        tags: ['lifecycle'],
        operationId: 'restoreTenant',
        summary: 'Bring a decommissioned tenant back, within its retention',
        params: TenantRef,
        response: { 202: TenantResource, ...problems(401, 404, 409) },
      },
    },
    async (request, reply) => reply.code(202).send(tenantResource(await restoreTenant(db, request.params.id, request.principal))),
  )

  app.put(
    '/tenants/:id/legal-hold',
    {
      schema: {
        tags: ['lifecycle'],
        operationId: 'placeLegalHold',
        summary: 'Stop every wipe of this tenant, immediate or scheduled, until released',
        params: TenantRef,
        body: LegalHoldBody,
        response: { 200: TenantResource, ...problems(400, 401, 404, 409) },
      },
    },
    async (request) => tenantResource(await placeLegalHold(db, request.params.id, request.body.reason, request.principal)),
  )

  app.delete(
    '/tenants/:id/legal-hold',
    {
      schema: {
        tags: ['lifecycle'],
        operationId: 'releaseLegalHold',
        summary: 'Release the legal hold; a wipe that came due meanwhile runs at the next sweep',
        params: TenantRef,
        response: { 200: TenantResource, ...problems(401, 404) },
      },
    },
    async (request) => tenantResource(await releaseLegalHold(db, request.params.id, request.principal)),
  )
}

export default transitionRoutes
