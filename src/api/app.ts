// The Fastify app factory: plugins, routes and the OpenAPI document. It opens
// nothing itself; compose.ts hands it its dependencies.
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify'
import auth from './auth.js'
import type { ApiDeps } from './deps.js'
import health from './health.js'
import idempotency from './idempotency.js'
import input from './input.js'
import problem, { onFrameworkError } from './problem.js'
import tenants from './tenants.js'
import transitions from './transitions.js'
import credentials from './credentials.js'
import webhooks from './webhooks.js'
import fleet from './fleet.js'
import principals from './principals.js'
import { auditPlugin, auditRoutes } from './audit.js'
import { declareRateLimits } from './openapi-headers.js'
import rateLimit from './rate-limit.js'

export const API_VERSION = '0.1.0'

export async function buildApp(deps: ApiDeps): Promise<FastifyInstance> {
  const logger: FastifyBaseLogger = deps.log
  const app = Fastify({
    loggerInstance: logger,
    // Unknown fields are refused (400), never silently dropped.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', useDefaults: true, allErrors: true } },
    bodyLimit: 256 * 1024,
    // Malformed percent-encoding and over-long path parameters: problems too, not Fastify's own JSON.
    frameworkErrors: onFrameworkError,
  }).withTypeProvider<TypeBoxTypeProvider>()

  // Registered first: request decorators and the error handler reach only the plugins registered after them.
  await app.register(problem)
  // JSON parsing and the text, depth and unexpected-body checks every route shares.
  await app.register(input)
  // Before auth: a flood of requests, with keys or without, is limited before any lookup.
  await app.register(rateLimit, { redis: deps.redis, max: deps.config.rateLimitMax, windowMs: deps.config.rateLimitWindowMs, prefix: deps.config.queuePrefix })
  await app.register(auth, { db: deps.db })
  await app.register(auditPlugin, { db: deps.db })
  await app.register(idempotency, { db: deps.db })
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'Landlord',
        version: API_VERSION,
        description: 'Tenant control plane: onboard tenants into their own PostgreSQL databases and run their lifecycle.',
        license: { name: 'Apache-2.0', url: 'https://www.apache.org/licenses/LICENSE-2.0' },
      },
      // Generated clients take their base URL from here; deployments pass their own.
      servers: [{ url: 'http://127.0.0.1:3000', description: 'The default local address (HOST and PORT)' }],
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'A Landlord API key' } } },
      security: [{ bearer: [] }],
      tags: [
        { name: 'tenants', description: 'Onboarding and the tenant registry' },
        { name: 'lifecycle', description: 'Suspend, hibernate, decommission, restore, legal hold' },
        { name: 'credentials', description: 'Short-lived logins and routing' },
        { name: 'webhooks', description: 'Signed lifecycle events for billing, and their delivery log' },
        { name: 'fleet', description: 'Fleet migrations and the fleet\'s schema versions' },
        { name: 'access', description: 'Principals, API keys, tenant grants' },
        { name: 'health', description: 'Liveness, readiness and docs' },
      ],
    },
    transformObject: (doc) => declareRateLimits(('openapiObject' in doc ? doc.openapiObject : doc.swaggerObject) as Record<string, unknown>) as never,
  })
  await app.register(swaggerUi, { routePrefix: '/docs' })

  app.get('/openapi.json', { config: { public: true }, schema: { hide: true } }, async () => app.swagger())
  await app.register(health, deps)
  await app.register(tenants, deps)
  await app.register(transitions, deps)
  await app.register(credentials, deps)
  await app.register(webhooks, deps)
  await app.register(fleet, deps)
  await app.register(principals, deps)
  await app.register(auditRoutes, deps)
  return app
}
