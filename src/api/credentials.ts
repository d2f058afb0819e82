// Credential routes: short-lived logins, rotation, and secret-free routing info.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { getTenant } from '../db/tenants.js'
import { connectionInfo, issueCredentials } from '../lifecycle/credentials.js'
import { requestRotation } from '../lifecycle/operations.js'
import { hasTag } from '../lifecycle/states.js'
import type { ApiDeps } from './deps.js'
import { problems } from './problem.js'
import { tenantResource } from './tenants.js'
import { ConnectionResource, CredentialsResource, TenantRef, TenantResource } from './tenants.schemas.js'

const credentialRoutes: FastifyPluginAsyncTypebox<ApiDeps> = async (app, deps) => {
  const { db, config, secrets } = deps

  app.post(
    '/tenants/:id/credentials',
    {
      schema: {
        tags: ['credentials'],
        operationId: 'issueCredentials',
        summary: 'Short-lived login credentials; wakes a hibernated tenant first',
        description:
          'The password is shown only in this response. With an Idempotency-Key, a retry returns the same live lease instead of a new one.',
        params: TenantRef,
        response: { 201: CredentialsResource, ...problems(400, 401, 404, 409, 423, 503) },
      },
      // 'forward', not 'replay': the response holds a password, so it is never
      // stored; the secrets backend finds the live lease by the key instead.
      config: { idempotency: 'forward' },
    },
    async (request, reply) => {
      const creds = await issueCredentials(deps, request.params.id, request.principal, request.idempotency?.key)
      return reply
        .code(201)
        .header('cache-control', 'no-store')
        .send({ ...creds, expires_at: creds.expires_at.toISOString() })
    },
  )

  app.post(
    '/tenants/:id/rotate-credentials',
    {
      schema: {
        tags: ['credentials'],
        operationId: 'rotateCredentials',
        summary: 'Revoke every lease issued so far and end their sessions',
        params: TenantRef,
        response: { 202: TenantResource, ...problems(401, 404, 409) },
      },
    },
    async (request, reply) => reply.code(202).send(tenantResource(await requestRotation(db, request.params.id, request.principal))),
  )

  app.get(
    '/tenants/:id/connection',
    {
      schema: {
        tags: ['credentials'],
        operationId: 'getConnection',
        summary: 'Where the tenant database is and how to get a login; no secret',
        params: TenantRef,
        response: { 200: ConnectionResource, ...problems(401, 404) },
      },
    },
    async (request, reply) => {
      const tenant = await getTenant(db, request.params.id)
      // Routing changes only with the lifecycle: a short private cache is safe.
      reply.header('cache-control', 'private, max-age=30')
      return {
        ...connectionInfo(config, tenant),
        state: tenant.state,
        accepts_connections: hasTag(tenant.state, 'serving'),
        schema_version: tenant.schema_version,
        credentials: {
          source: secrets.name,
          ...(secrets.credsPath ? { path: secrets.credsPath(tenant) } : {}),
          endpoint: `/tenants/${tenant.id}/credentials`,
          ttl_seconds: Math.round(config.credentialTtlMs / 1000),
        },
      }
    },
  )
}

export default credentialRoutes
