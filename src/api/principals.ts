// Principals, their keys and grants (admin), and GET /me (any key).
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import {
  changePrincipal,
  createKey,
  createPrincipal,
  deny,
  effectiveAccess,
  getPrincipal,
  grant,
  keysOf,
  listPrincipals,
  removeDenial,
  removePrincipal,
  revokeGrant,
  revokePrincipalKey,
  setMainTenant,
} from '../access/principals.js'
import type { Principal } from '../db/schema.js'
import type { ApiDeps } from './deps.js'
import {
  CreatedKey,
  CreateKeyBody,
  CreatePrincipalBody,
  EffectiveAccess,
  GrantRef,
  KeyList,
  KeyRef,
  MainTenantBody,
  Me,
  PrincipalList,
  PrincipalRef,
  PrincipalResource,
  UpdatePrincipalBody,
} from './principals.schemas.js'
import { problems } from './problem.js'

const iso = (d: Date | null) => d?.toISOString() ?? null

function principalResource(p: Principal) {
  return {
    name: p.name,
    scopes: p.scopes,
    all_tenants: p.all_tenants,
    description: p.description,
    created_at: p.created_at.toISOString(),
    updated_at: p.updated_at.toISOString(),
  }
}

const principalRoutes: FastifyPluginAsyncTypebox<ApiDeps> = async (app, { db }) => {
  const tags = ['access']

  app.get(
    '/me',
    { schema: { tags, operationId: 'getMe', summary: 'The principal of this key: its key id, scopes, grants and main tenant', response: { 200: Me, ...problems(401) } } },
    async (request) => ({ ...(await effectiveAccess(db, request.principal)), key_id: request.access.keyId, scopes: [...request.access.scopes] }),
  )

  app.post(
    '/principals',
    { schema: { tags, operationId: 'createPrincipal', summary: 'Add a principal (a person or a service) with scopes', body: CreatePrincipalBody, response: { 201: PrincipalResource, ...problems(400, 401, 403, 409) } } },
    async (request, reply) => {
      const p = await createPrincipal(db, request.body)
      return reply.code(201).header('location', `/principals/${p.name}`).send(principalResource(p))
    },
  )

  app.get(
    '/principals',
    { schema: { tags, operationId: 'listPrincipals', summary: 'Every principal', response: { 200: PrincipalList, ...problems(401, 403) } } },
    async () => ({ items: (await listPrincipals(db)).map(principalResource) }),
  )

  app.get(
    '/principals/:name',
    { schema: { tags, operationId: 'getPrincipal', summary: 'One principal', params: PrincipalRef, response: { 200: PrincipalResource, ...problems(400, 401, 403, 404) } } },
    async (request) => principalResource(await getPrincipal(db, request.params.name)),
  )

  app.patch(
    '/principals/:name',
    {
      schema: { tags, operationId: 'updatePrincipal', summary: "Change a principal's scopes or description", params: PrincipalRef, body: UpdatePrincipalBody, response: { 200: PrincipalResource, ...problems(400, 401, 403, 404, 409) } },
    },
    async (request) => principalResource(await changePrincipal(db, request.params.name, request.body)),
  )

  app.delete(
    '/principals/:name',
    { schema: { tags, operationId: 'deletePrincipal', summary: 'Remove a principal, its keys and grants', params: PrincipalRef, response: { 204: { type: 'null', description: 'Done' }, ...problems(400, 401, 403, 404, 409) } } },
    async (request, reply) => {
      await removePrincipal(db, request.params.name)
      return reply.code(204).send(null)
    },
  )

  app.post(
    '/principals/:name/keys',
    { schema: { tags, operationId: 'createKey', summary: 'A new API key for the principal; the key is shown only in this response', params: PrincipalRef, body: CreateKeyBody, response: { 201: CreatedKey, ...problems(400, 401, 403, 404, 422) } } },
    async (request, reply) => {
      const k = await createKey(db, request.params.name, request.body)
      return reply.code(201).header('cache-control', 'no-store').send({ id: k.id, name: k.name, expires_at: iso(k.expires_at), created_at: k.created_at.toISOString(), key: k.key })
    },
  )

  app.get(
    '/principals/:name/keys',
    { schema: { tags, operationId: 'listKeys', summary: "A principal's keys: ids, names, last use and expiry, never the keys", params: PrincipalRef, response: { 200: KeyList, ...problems(400, 401, 403, 404) } } },
    async (request) => ({
      items: (await keysOf(db, request.params.name)).map((k) => ({
        id: k.id,
        name: k.name,
        bootstrap: k.bootstrap,
        created_at: k.created_at.toISOString(),
        expires_at: iso(k.expires_at),
        last_used_at: iso(k.last_used_at),
        revoked_at: iso(k.revoked_at),
      })),
    }),
  )

  app.delete(
    '/principals/:name/keys/:keyId',
    { schema: { tags, operationId: 'revokeKey', summary: 'Revoke a key, at once', params: KeyRef, response: { 204: { type: 'null', description: 'Done' }, ...problems(400, 401, 403, 404) } } },
    async (request, reply) => {
      await revokePrincipalKey(db, request.params.name, request.params.keyId)
      return reply.code(204).send(null)
    },
  )

  app.get(
    '/principals/:name/grants',
    { schema: { tags, operationId: 'getGrants', summary: "A principal's effective access: grants, denials and main tenant", params: PrincipalRef, response: { 200: EffectiveAccess, ...problems(400, 401, 403, 404) } } },
    async (request) => effectiveAccess(db, request.params.name),
  )

  const listRoute = (path: 'grants' | 'denials', method: 'put' | 'delete', operationId: string, summary: string, fn: typeof grant) =>
    app[method](
      `/principals/:name/${path}/:tenant`,
      { schema: { tags, operationId, summary, params: GrantRef, response: { 200: EffectiveAccess, ...problems(400, 401, 403, 404, 409) } } },
      async (request) => fn(db, request.params.name, request.params.tenant),
    )
  listRoute('grants', 'put', 'grantTenant', 'Grant a tenant (or `*`: every tenant)', grant)
  listRoute('grants', 'delete', 'revokeGrant', 'Revoke a grant (or `*`); effective on the next request', revokeGrant)
  listRoute('denials', 'put', 'denyTenant', 'Exclude a tenant, even from a `*` grant', deny)
  listRoute('denials', 'delete', 'removeDenial', 'Lift a denial', removeDenial)

  app.put(
    '/principals/:name/main-tenant',
    { schema: { tags, operationId: 'setMainTenant', summary: 'The tenant the principal lands on: one it is granted', params: PrincipalRef, body: MainTenantBody, response: { 200: EffectiveAccess, ...problems(400, 401, 403, 404, 409) } } },
    async (request) => setMainTenant(db, request.params.name, request.body.tenant),
  )
}

export default principalRoutes
