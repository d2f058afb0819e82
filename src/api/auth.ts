// Who is calling, and may they: a Bearer API key on every route but health
// and docs (401 without one), then the route's entry in route-access.ts: the
// scope (403 without it) and the tenant it acts on (404 when the principal may
// not see it, exactly as for a tenant that does not exist). A route with no
// entry cannot be registered.
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { accessOf, canSee, hasScope, seesEveryTenant, type Access } from '../access/access.js'
import { deliveryAccess } from '../db/deliveries.js'
import { endpointOwner } from '../db/endpoints.js'
import { isUuid, type Db } from '../db/index.js'
import { authenticate, touchKey } from '../db/principals.js'
import { findTenant } from '../db/tenants.js'
import { deliveryNotFound, endpointNotFound, forbidden, needsEveryTenant, tenantNotFound, unauthorized } from '../errors.js'
import { isStorableText } from './json-inspect.js'
import { bearer } from './bearer.js'
import { ROUTE_ACCESS, type RouteAccess } from './route-access.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** The principal the presented API key belongs to. */
    principal: string
    /** What it may do and see. */
    access: Access
    /** The tenant a tenant route acts on, for the audit row. */
    auditTenant: { id: string; slug: string } | null
  }
  interface FastifyContextConfig {
    /** Route answers without an API key (health, docs). */
    public?: boolean
    /** Set from ROUTE_ACCESS when the route is registered. */
    access?: RouteAccess
  }
}

async function authPlugin(app: FastifyInstance, opts: { db: Db }) {
  const { db } = opts
  app.decorateRequest('principal', '')
  app.decorateRequest('access', null as unknown as Access)
  app.decorateRequest('auditTenant', null)

  app.addHook('onRoute', (route) => {
    if (route.config?.public || route.schema?.hide) return
    const operationId = route.schema?.operationId
    const rule = operationId === undefined ? undefined : ROUTE_ACCESS[operationId]
    if (!rule) throw new Error(`${String(route.method)} ${route.url} declares no access: add its operationId to src/api/route-access.ts`)
    route.config = { ...route.config, access: rule }
  })

  app.addHook('onRequest', async (request, reply) => {
    if (request.routeOptions.config.public || request.is404 || request.url.startsWith('/docs')) return
    const key = bearer(request)
    const holder = key ? await authenticate(db, key) : undefined
    if (!holder) {
      // Every failed authentication counts against the address too: inventing keys buys no fresh buckets.
      await app.limitFailedAuth(request, reply)
      // Set here, not by the error handler: it clears only content-type and content-length.
      reply.header('www-authenticate', 'Bearer')
      throw unauthorized(key !== undefined)
    }
    request.principal = holder.principal
    request.access = accessOf(holder)
    void touchKey(db, holder.keyId).catch((err: unknown) => request.log.warn({ err }, 'key use not recorded'))

    const rule = request.routeOptions.config.access
    if (!rule) throw forbidden('admin') // not reached: every route has a rule
    if (rule.scope !== null && !hasScope(request.access, rule.scope)) throw forbidden(rule.scope)
    if (rule.everyTenant && !seesEveryTenant(request.access.visible)) throw needsEveryTenant()
    const params = request.params as { id?: string }
    // Text Postgres cannot store (NUL, lone surrogates) is refused as a 400 by the input plugin, later.
    if (params.id !== undefined && !isStorableText(params.id)) return
    if (rule.tenant && params.id !== undefined) {
      const tenant = await findTenant(db, params.id)
      if (tenant && !canSee(request.access.visible, tenant.id)) throw tenantNotFound(params.id)
      if (tenant) request.auditTenant = { id: tenant.id, slug: tenant.slug }
    }
    if (rule.endpoint && params.id !== undefined && isUuid(params.id) && !seesEveryTenant(request.access.visible)) {
      const owner = await endpointOwner(db, params.id)
      if (owner !== undefined && owner !== request.principal) throw endpointNotFound(params.id)
    }
    if (rule.delivery && params.id !== undefined && isUuid(params.id)) {
      const delivery = await deliveryAccess(db, params.id)
      const all = seesEveryTenant(request.access.visible)
      const visible = delivery && (delivery.tenant_id === null ? all : canSee(request.access.visible, delivery.tenant_id))
      // And, as for endpoints, only on an endpoint it made unless it sees every tenant.
      const reachable = delivery && (all || delivery.owner === request.principal)
      if (delivery && (!visible || !reachable)) throw deliveryNotFound(params.id)
    }
  })
}

export default fp(authPlugin, { name: 'auth', dependencies: ['problem', 'rate-limit'] })
