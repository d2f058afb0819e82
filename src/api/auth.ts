// Bearer API keys on every route but health and docs.
import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { authenticate } from '../db/api-keys.js'
import type { Db } from '../db/index.js'
import { unauthorized } from '../errors.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** The principal the presented API key belongs to. */
    principal: string
  }
  interface FastifyContextConfig {
    /** Route answers without an API key (health, docs). */
    public?: boolean
  }
}

function bearer(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization
  const m = header ? /^Bearer\s+(\S+)$/i.exec(header) : null
  return m?.[1]
}

async function authPlugin(app: FastifyInstance, opts: { db: Db }) {
  app.decorateRequest('principal', '')
  app.addHook('onRequest', async (request, reply) => {
    if (request.routeOptions.config.public || request.is404 || request.url.startsWith('/docs')) return
    const key = bearer(request)
    const principal = key ? await authenticate(opts.db, key) : undefined
    if (!principal) {
      // Set here, not by the error handler: it clears only content-type and content-length.
      reply.header('www-authenticate', 'Bearer')
      throw unauthorized(key !== undefined)
    }
    request.principal = principal
  })
}

export default fp(authPlugin, { name: 'auth', dependencies: ['problem'] })
