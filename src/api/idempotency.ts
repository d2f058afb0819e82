// `Idempotency-Key`: the one path for every route that takes one. A route opts
// in with `config: { idempotency: mode }`; the key must be 1-255 visible ASCII
// characters, else a 400 (an unbounded key would reach a btree index, whose
// entries Postgres caps near 2.7 kB).
//
// - 'replay': the key is claimed before the handler runs and the first
//   response is stored; a retry gets it back as sent (`idempotent-replayed:
//   true`), the same key with another request is a 422, and a duplicate that
//   arrives while the first still runs is a 409. A handler whose domain
//   function commits in a transaction stores the response there, with
//   `request.idempotency.complete(trx, status, body, location)`: a crash
//   between the commit and the reply then still replays. onSend stores the
//   response when the handler did not store this status itself, and frees the
//   key after a 400 (nothing ran: the corrected request may use it, as Stripe
//   does) or a 5xx (the retry must run again).
// - 'forward': the key is only validated and handed to the handler
//   (`request.idempotency.key`); the domain makes a retry safe itself and
//   nothing is stored. For responses that must never be stored: credentials
//   hold a password, and the secrets backend replays the live lease by key.
import { createHash } from 'node:crypto'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { Transaction } from 'kysely'
import { stringify } from 'safe-stable-stringify'
import type { Db } from '../db/index.js'
import { claimKey, completeKey, releaseKey } from '../db/idempotency.js'
import type { Database } from '../db/schema.js'
import { idempotencyInProgress, idempotencyKeyReused, invalidIdempotencyKey } from '../errors.js'
import { PROBLEM_TYPE } from './problem.js'

export type IdempotencyMode = 'replay' | 'forward'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** How the route takes an Idempotency-Key; without it, the header is ignored. */
    idempotency?: IdempotencyMode
  }
  interface FastifyRequest {
    /** The request's Idempotency-Key on a route that takes one; null without one. */
    idempotency: ForwardedKey | ClaimedKey | null
  }
}

/** A key the domain uses itself. */
export interface ForwardedKey {
  readonly mode: 'forward'
  readonly key: string
}

/** A key claimed for this request, on a 'replay' route. */
export class ClaimedKey {
  readonly mode = 'replay'
  #storedStatus: number | undefined
  #settled = false

  constructor(
    private readonly db: Db,
    private readonly principal: string,
    readonly key: string,
  ) {}

  /** Stores the response in the domain's transaction: it commits, or not, with the work it reports. */
  async complete(trx: Transaction<Database>, status: number, body: unknown, location: string | null = null): Promise<void> {
    await completeKey(trx, this.principal, this.key, { status_code: status, response: body, location })
    this.#storedStatus = status
  }

  /** onSend: stores what was sent unless the handler stored this very status, or frees the key. Runs once. */
  async settle(status: number, payload: unknown, location: string | null): Promise<void> {
    if (this.#settled) return
    this.#settled = true
    if (status >= 500 || status === 400) return releaseKey(this.db, this.principal, this.key)
    if (this.#storedStatus === status) return
    await completeKey(this.db, this.principal, this.key, {
      status_code: status,
      response: typeof payload === 'string' ? JSON.parse(payload) : null,
      location,
    })
  }
}

const KEY = /^[\x21-\x7e]{1,255}$/

function keyOf(request: FastifyRequest): string | undefined {
  const key = request.headers['idempotency-key']
  if (key === undefined) return undefined
  if (typeof key !== 'string' || !KEY.test(key)) throw invalidIdempotencyKey()
  return key
}

/** Method, route, params and body; key order inside them does not change it. */
function requestHash(request: FastifyRequest): string {
  const canonical = (value: unknown) => stringify(value) ?? 'null'
  return createHash('sha256')
    .update(`${request.method} ${request.routeOptions.url ?? request.url}\n${canonical(request.params)}\n${canonical(request.body)}`)
    .digest('hex')
}

async function idempotencyPlugin(app: FastifyInstance, opts: { db: Db }) {
  const { db } = opts
  app.decorateRequest('idempotency', null)

  app.addHook('preHandler', async (request, reply) => {
    const mode = request.routeOptions.config.idempotency
    if (mode === undefined) return
    const key = keyOf(request)
    if (key === undefined) return
    if (mode === 'forward') {
      request.idempotency = { mode, key }
      return
    }
    const claim = await claimKey(db, request.principal, key, requestHash(request))
    switch (claim.kind) {
      case 'claimed':
        request.idempotency = new ClaimedKey(db, request.principal, key)
        return
      case 'mismatch':
        throw idempotencyKeyReused()
      case 'in_progress':
        throw idempotencyInProgress()
      case 'replay':
        reply.code(claim.status).header('idempotent-replayed', 'true')
        if (claim.location) reply.header('location', claim.location)
        if (claim.status >= 400) reply.type(PROBLEM_TYPE)
        return reply.send(claim.response)
    }
  })

  app.addHook('onSend', async (request, reply, payload) => {
    if (request.idempotency instanceof ClaimedKey) {
      const location = reply.getHeader('location')
      await request.idempotency.settle(reply.statusCode, payload, typeof location === 'string' ? location : null)
    }
    return payload
  })
}

export default fp(idempotencyPlugin, { name: 'idempotency', dependencies: ['auth'] })
