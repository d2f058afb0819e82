// `Idempotency-Key` on routes marked `config: { idempotent: true }`: a replay
// gets the first response, the same key with another body gets 422, and a
// duplicate arriving while the first is still running gets 409.
import { createHash } from 'node:crypto'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { Db } from '../db/index.js'
import { claimKey, completeKey, releaseKey } from '../db/idempotency.js'
import { invalidIdempotencyKey } from '../errors.js'
import { PROBLEM_TYPE, sendProblem } from './problem.js'

declare module 'fastify' {
  interface FastifyContextConfig {
    idempotent?: boolean
  }
  interface FastifyRequest {
    idempotencyKey: string | null
  }
}

const KEY = /^[\x21-\x7e]{1,255}$/

/**
 * The request's Idempotency-Key, or undefined without one. Every route that
 * takes a key reads it here: anything but 1-255 visible ASCII characters is a
 * 400 (an unbounded key would otherwise reach a btree index, whose entries
 * Postgres caps near 2.7 kB).
 */
export function idempotencyKeyOf(request: FastifyRequest): string | undefined {
  const key = request.headers['idempotency-key']
  if (key === undefined) return undefined
  if (typeof key !== 'string' || !KEY.test(key)) throw invalidIdempotencyKey()
  return key
}

/** JSON with sorted keys, so that key order does not change a request's hash. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`
  }
  return JSON.stringify(value) ?? 'null'
}

async function idempotencyPlugin(app: FastifyInstance, opts: { db: Db }) {
  const { db } = opts
  app.decorateRequest('idempotencyKey', null)

  app.addHook('preHandler', async (request, reply) => {
    if (!request.routeOptions.config.idempotent) return
    const key = idempotencyKeyOf(request)
    if (key === undefined) return
    const hash = createHash('sha256')
      .update(`${request.method} ${request.routeOptions.url ?? request.url}\n${canonical(request.params)}\n${canonical(request.body)}`)
      .digest('hex')
    const claim = await claimKey(db, request.principal, key, hash)
    switch (claim.kind) {
      case 'claimed':
        request.idempotencyKey = key
        return
      case 'mismatch':
        return sendProblem(reply, request, 422, 'LANDLORD_IDEMPOTENCY_KEY_REUSED', 'This Idempotency-Key was used with a different request.')
      case 'in_progress':
        return sendProblem(reply, request, 409, 'LANDLORD_IDEMPOTENCY_IN_PROGRESS', 'A request with this Idempotency-Key is still being processed; retry later.')
      case 'replay':
        reply.code(claim.status).header('idempotent-replayed', 'true')
        if (claim.location) reply.header('location', claim.location)
        if (claim.status >= 400) reply.type(PROBLEM_TYPE)
        return reply.send(claim.response)
    }
  })

  app.addHook('onSend', async (request, reply, payload) => {
    const key = request.idempotencyKey
    if (key === null || key === undefined) return payload
    request.idempotencyKey = null
    // A 400 refused the request before anything ran (Stripe does the same):
    // the key stays free for the corrected request instead of replaying the refusal.
    if (reply.statusCode >= 500 || reply.statusCode === 400) {
      await releaseKey(db, request.principal, key)
    } else {
      const location = reply.getHeader('location')
      await completeKey(db, request.principal, key, {
        status_code: reply.statusCode,
        response: typeof payload === 'string' ? JSON.parse(payload) : null,
        location: typeof location === 'string' ? location : null,
      })
    }
    return payload
  })
}

export default fp(idempotencyPlugin, { name: 'idempotency', dependencies: ['auth'] })
