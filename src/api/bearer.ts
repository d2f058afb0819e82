// The API key of a request, as every plugin reads it.
import type { FastifyRequest } from 'fastify'

/** The key of `Authorization: Bearer <key>` (any case, any spacing), or undefined. */
export function bearer(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization
  const m = header ? /^Bearer\s+(\S+)$/i.exec(header) : null
  return m?.[1]
}
