// RFC 9457 problem documents: the one error handler and the shared schema.
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { Type } from '@fastify/type-provider-typebox'
import { LandlordError } from '../errors.js'

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

const TITLES: Record<number, string> = {
  400: 'Bad request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not found',
  405: 'Method not allowed',
  406: 'Not acceptable',
  409: 'Conflict',
  413: 'Payload too large',
  414: 'URI too long',
  415: 'Unsupported media type',
  422: 'Unprocessable content',
  429: 'Too many requests',
}

export function sendProblem(
  reply: FastifyReply,
  request: FastifyRequest,
  status: number,
  code: string,
  detail: string,
  extra: Record<string, unknown> = {},
  title = TITLES[status] ?? 'Error',
) {
  return reply
    .code(status)
    .type(PROBLEM_TYPE)
    .send({ ...extra, type: 'about:blank', title, status, detail, instance: request.url, code })
}

/** Fastify's own 4xx errors for malformed requests, under stable Landlord codes. */
const FASTIFY_CODES: Record<string, string> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'LANDLORD_UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'LANDLORD_INVALID_CONTENT_LENGTH',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'LANDLORD_EMPTY_BODY',
  FST_ERR_CTP_INVALID_JSON_BODY: 'LANDLORD_INVALID_JSON',
  FST_ERR_CTP_BODY_TOO_LARGE: 'LANDLORD_BODY_TOO_LARGE',
}

/**
 * Fastify's `frameworkErrors`: what the router refuses before any hook or the
 * error handler runs, which would otherwise answer in its own JSON shape.
 */
export function onFrameworkError(err: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  if (err.code === 'FST_ERR_BAD_URL') {
    void sendProblem(reply, request, 400, 'LANDLORD_INVALID_URL', 'The URL path holds a malformed percent-encoding.')
  } else if (err.code === 'FST_ERR_MAX_PARAM_LENGTH') {
    void sendProblem(reply, request, 414, 'LANDLORD_URI_TOO_LONG', 'A path parameter is longer than the router accepts.')
  } else {
    request.log.error({ err }, 'request failed')
    void sendProblem(reply, request, 500, 'LANDLORD_INTERNAL', 'An internal error occurred; it has been logged.', {}, 'Internal server error')
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
    if (err instanceof LandlordError) {
      if (typeof err.extra.retry_after === 'number') reply.header('retry-after', String(err.extra.retry_after))
      return sendProblem(reply, request, err.status, err.code, err.message, err.extra, err.title)
    }
    if (err.validation) {
      const errors = validationErrors(err)
      return sendProblem(reply, request, 400, 'LANDLORD_VALIDATION_FAILED', errors.map((e) => `${e.path} ${e.message}`).join('; '), {
        errors,
      })
    }
    const status = err.statusCode ?? 500
    if (status >= 400 && status < 500) {
      return sendProblem(reply, request, status, FASTIFY_CODES[err.code] ?? err.code ?? 'LANDLORD_BAD_REQUEST', err.message)
    }
    request.log.error({ err }, 'request failed')
    return sendProblem(reply, request, 500, 'LANDLORD_INTERNAL', 'An internal error occurred; it has been logged.', {}, 'Internal server error')
  })
  app.setNotFoundHandler((request, reply) =>
    sendProblem(reply, request, 404, 'LANDLORD_ROUTE_NOT_FOUND', `No route ${request.method} ${request.url.split('?')[0]}.`),
  )
}

export default fp(problemPlugin, { name: 'problem' })
