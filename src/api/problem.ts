// RFC 9457 problem documents: the one error handler and the shared schema.
// Hooks and handlers throw the factories of src/errors.ts; only this file
// writes a problem body.
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { Type } from '@fastify/type-provider-typebox'
import { frameworkRefusal, internalError, LandlordError, malformedUrl, routeNotFound, uriTooLong, validationFailed } from '../errors.js'

export const PROBLEM_TYPE = 'application/problem+json'

export const Problem = Type.Object(
  {
    type: Type.String(),
    title: Type.String(),
    status: Type.Integer(),
    detail: Type.Optional(Type.String()),
    instance: Type.Optional(Type.String()),
    code: Type.String(),
    errors: Type.Optional(Type.Array(Type.Object({ path: Type.String(), message: Type.String() }))),
    allowed_events: Type.Optional(Type.Array(Type.String())),
    state: Type.Optional(Type.String()),
  },
  { additionalProperties: true, description: 'RFC 9457 problem document' },
)

/** Response schemas for the problems a route may answer with. */
export function problems(...statuses: number[]) {
  return Object.fromEntries(statuses.map((s) => [s, Problem]))
}

/** Writes `err` as a problem document: the one place a problem body is shaped. */
function sendError(reply: FastifyReply, request: FastifyRequest, err: LandlordError) {
  if (typeof err.extra.retry_after === 'number') reply.header('retry-after', String(err.extra.retry_after))
  return reply
    .code(err.status)
    .type(PROBLEM_TYPE)
    .send({ ...err.extra, type: 'about:blank', title: err.title, status: err.status, detail: err.message, instance: request.url, code: err.code })
}

/**
 * Fastify's `frameworkErrors`: what the router refuses before any hook or the
 * error handler runs, which would otherwise answer in its own JSON shape.
 */
export function onFrameworkError(err: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  if (err.code === 'FST_ERR_BAD_URL') {
    void sendError(reply, request, malformedUrl())
  } else if (err.code === 'FST_ERR_MAX_PARAM_LENGTH') {
    void sendError(reply, request, uriTooLong())
  } else {
    request.log.error({ err }, 'request failed')
    void sendError(reply, request, internalError())
  }
}

function validationErrors(err: FastifyError) {
  return (err.validation ?? []).map((v) => {
    const where = err.validationContext ?? 'body'
    const missing = (v.params as { missingProperty?: string; additionalProperty?: string } | undefined) ?? {}
    const field = missing.missingProperty ?? missing.additionalProperty
    const path = `${where}${v.instancePath.replace(/\//g, '.')}${field ? `.${field}` : ''}`
    const message = missing.additionalProperty ? 'is not a known field' : (v.message ?? 'is invalid')
    return { path, message }
  })
}

async function problemPlugin(app: FastifyInstance) {
  app.setErrorHandler((err: FastifyError, request, reply) => {
    if (err instanceof LandlordError) return sendError(reply, request, err)
    if (err.validation) return sendError(reply, request, validationFailed(validationErrors(err)))
    const status = err.statusCode ?? 500
    if (status >= 400 && status < 500) return sendError(reply, request, frameworkRefusal(status, err.code, err.message))
    request.log.error({ err }, 'request failed')
    return sendError(reply, request, internalError())
  })
  app.setNotFoundHandler((request) => {
    throw routeNotFound(request.method, request.url.split('?')[0] ?? '')
  })
}

export default fp(problemPlugin, { name: 'problem' })
