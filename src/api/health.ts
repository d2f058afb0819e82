// Liveness and readiness: /readyz checks Postgres, Redis and, with the Vault backend, Vault.
import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { pingDb } from '../db/health.js'
import { registry } from '../metrics.js'
import type { ApiDeps } from './deps.js'
import { problems } from './problem.js'

const Check = Type.Union([Type.Literal('ok'), Type.Literal('failing')])
const Readiness = Type.Object({
  status: Check,
  checks: Type.Object({ postgres: Check, redis: Check, secrets: Type.Optional(Check) }),
  secrets_backend: Type.String({ description: 'local or vault' }),
})

async function within<T>(ms: number, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms)
  })
  try {
    return await Promise.race([p, timeout])
  } finally {
    clearTimeout(timer)
  }
}

const healthRoutes: FastifyPluginAsyncTypebox<ApiDeps> = async (app, { db, redis, secrets }) => {
  app.get(
    '/metrics',
    {
      schema: {
        tags: ['health'],
        operationId: 'metrics',
        summary: 'Prometheus metrics of this process',
        produces: ['text/plain'],
        response: { 200: Type.String(), ...problems(401) },
      },
    },
    async (_request, reply) => reply.type(registry.contentType).send(await registry.metrics()),
  )

  app.get(
    '/healthz',
    {
      config: { public: true },
      schema: { tags: ['health'], operationId: 'healthz', summary: 'The process is up', response: { 200: Type.Object({ status: Type.Literal('ok') }) } },
    },
    async () => ({ status: 'ok' as const }),
  )

  app.get(
    '/readyz',
    {
      config: { public: true },
      schema: {
        tags: ['health'],
        operationId: 'readyz',
        summary: 'Postgres, Redis and (with Vault) Vault answer',
        response: { 200: Readiness, 503: Readiness },
      },
    },
    async (request, reply) => {
      const probe = async (name: string, p: () => Promise<unknown>) => {
        try {
          await within(2000, p())
          return 'ok' as const
        } catch (err) {
          request.log.warn({ err, dependency: name }, 'readiness check failed')
          return 'failing' as const
        }
      }
      const ready = secrets.ready?.bind(secrets)
      const [postgres, redisCheck, secretsCheck] = await Promise.all([
        probe('postgres', () => pingDb(db)),
        probe('redis', () => redis.ping()),
        ready
          ? probe(secrets.name, async () => {
              const r = await ready()
              if (!r.ok) throw new Error(r.detail)
            })
          : undefined,
      ])
      const ok = postgres === 'ok' && redisCheck === 'ok' && secretsCheck !== 'failing'
      const checks = { postgres, redis: redisCheck, ...(secretsCheck ? { secrets: secretsCheck } : {}) }
      return reply.code(ok ? 200 : 503).send({ status: ok ? 'ok' : 'failing', checks, secrets_backend: secrets.name })
    },
  )
}

export default healthRoutes
