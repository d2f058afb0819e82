// Rate limits per API key (per client address without one), shared by every
// replica through Redis (@fastify/rate-limit). The limit runs as the first
// app-wide onRequest hook, before authentication, so every answer counts and
// carries RateLimit-Limit, -Remaining and -Reset (IETF draft), 401s, 403s and
// 404s included; over the limit, a 429 problem with Retry-After. A presented
// key that authenticates nothing also counts against its client address
// (`limitFailedAuth`, called by auth.ts): inventing keys buys no fresh
// buckets. Health probes and docs are not limited.
import { createHash } from 'node:crypto'
import rateLimit from '@fastify/rate-limit'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { Redis } from 'ioredis'
import { rateLimited } from '../errors.js'
import { bearer } from './bearer.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Counts a failed authentication against the client address; throws the 429 past the limit. */
    limitFailedAuth: (request: FastifyRequest, reply: FastifyReply) => Promise<void>
  }
}

export interface RateLimitOptions {
  redis: Redis
  /** Requests per window and key. */
  max: number
  windowMs: number
  /** Redis key prefix (the queue prefix: instances sharing Redis keep apart). */
  prefix: string
}

/** The key's hash, never the key (Redis holds no secret), read as auth.ts reads it: any spelling of the header is one key. */
function clientOf(request: FastifyRequest): string {
  const key = bearer(request)
  return key ? `key:${createHash('sha256').update(key).digest('hex').slice(0, 32)}` : `ip:${request.ip}`
}

const exempt = (request: FastifyRequest) => request.routeOptions.config.public === true || request.url.startsWith('/docs')

async function rateLimitPlugin(app: FastifyInstance, opts: RateLimitOptions) {
  await app.register(rateLimit, {
    global: false,
    max: opts.max,
    timeWindow: opts.windowMs,
    redis: opts.redis,
    nameSpace: `${opts.prefix}:ratelimit:`,
    enableDraftSpec: true,
    // Redis away: serve rather than refuse everything (readiness reports Redis).
    skipOnError: true,
    errorResponseBuilder: (_request, context) => rateLimited(Math.ceil(context.ttl / 1000), context.max),
  })
  const perClient = app.rateLimit({ keyGenerator: clientOf })
  app.addHook('onRequest', async function (request, reply) {
    if (!exempt(request)) await perClient.call(this, request, reply)
  })
  // A second count on the same request: createRateLimit, which the plugin does not mark as run.
  const failedAuth = app.createRateLimit({ keyGenerator: (request) => `authfail:${request.ip}` })
  app.decorate('limitFailedAuth', async (request: FastifyRequest, reply: FastifyReply) => {
    const result = await failedAuth(request)
    if (result.isAllowed || !result.isExceeded) return
    reply.header('retry-after', String(result.ttlInSeconds))
    throw rateLimited(result.ttlInSeconds, result.max)
  })
}

export default fp(rateLimitPlugin, { name: 'rate-limit', dependencies: ['problem'] })
