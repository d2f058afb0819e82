// Rate limits per API key (per client address without one), shared by every
// replica through Redis (@fastify/rate-limit). Every limited route answers
// with the RateLimit-Limit, -Remaining and -Reset headers (IETF draft); a
// request over the limit gets a 429 problem with Retry-After. Health probes
// and docs are not limited.
import { createHash } from 'node:crypto'
import rateLimit from '@fastify/rate-limit'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { Redis } from 'ioredis'
import { rateLimited } from '../errors.js'
import { bearer } from './auth.js'

export interface RateLimitOptions {
  redis: Redis
  /** Requests per window and key. */
  max: number
  windowMs: number
  /** Redis key prefix (the queue prefix: instances sharing Redis keep apart). */
  prefix: string
}

/**
 * The key's hash, never the key: Redis holds no secret. The key as auth.ts
 * reads it, so `bearer`, `Bearer` and extra spaces all count as one key.
 */
function clientOf(request: FastifyRequest): string {
  const key = bearer(request)
  return key ? `key:${createHash('sha256').update(key).digest('hex').slice(0, 32)}` : `ip:${request.ip}`
}

async function rateLimitPlugin(app: FastifyInstance, opts: RateLimitOptions) {
  await app.register(rateLimit, {
    global: true,
    max: opts.max,
    timeWindow: opts.windowMs,
    redis: opts.redis,
    nameSpace: `${opts.prefix}:ratelimit:`,
    keyGenerator: clientOf,
    enableDraftSpec: true,
    // Redis away: serve rather than refuse everything (readiness reports Redis).
    skipOnError: true,
    allowList: (request) => request.routeOptions.config.public === true || request.url.startsWith('/docs'),
    errorResponseBuilder: (_request, context) => rateLimited(Math.ceil(context.ttl / 1000), context.max),
  })
}

export default fp(rateLimitPlugin, { name: 'rate-limit', dependencies: ['problem'] })
