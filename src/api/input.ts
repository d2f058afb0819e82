// Input hygiene shared by every route, so no handler can forget it: JSON is
// the only body format (anything else is a 415); a body must be valid UTF-8,
// nested at most MAX_BODY_DEPTH levels, and hold only finite numbers and text
// Postgres can store; the query string and path parameters get the same
// checks; a route that takes no body refuses one (but for `{}`). Each is a 400 naming where.
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { invalidJson, unexpectedBody } from '../errors.js'
import { flawError, inspectJson } from './json-inspect.js'

/**
 * The deepest JSON body accepted. Far above what any schema here needs
 * (metadata stops at 8), far below V8's recursion limit (~5,000 levels), so
 * nothing downstream that walks a body recursively (ajv, JSON.stringify, the
 * idempotency hash) can overflow the stack.
 */
export const MAX_BODY_DEPTH = 32

// RFC 8259 §8.1: JSON is UTF-8. A lenient decode would turn bad bytes into U+FFFD and store something else than was sent.
const utf8 = new TextDecoder('utf-8', { fatal: true })

async function inputPlugin(app: FastifyInstance) {
  // Fastify's own parser, kept for its empty-body and prototype-poisoning checks (`__proto__`, `constructor.prototype` are 400s).
  const parseJson = app.getDefaultJsonParser('error', 'error')
  // text/plain (Fastify's other default) goes too: any other media type is a 415.
  app.removeContentTypeParser(['application/json', 'text/plain'])
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, raw: Buffer, done) => {
    let text: string
    try {
      text = utf8.decode(raw)
    } catch {
      return done(invalidJson('The body is not valid UTF-8.'), undefined)
    }
    // Synchronous, though its type allows a promise.
    void parseJson(request, text, (err, body) => {
      if (err) return done(err, undefined)
      const flaw = inspectJson(body, 'body', MAX_BODY_DEPTH)
      done(flaw ? flawError(flaw, MAX_BODY_DEPTH) : null, body)
    })
  })

  // After validation, so that coerced query values are checked too: ajv turns `limit=Infinity` into a number
  // that passes `maximum` (Postgres then refuses it). Before the idempotency plugin's preHandler claims a key.
  app.addHook('preHandler', async (request) => {
    if (request.is404) return
    // `{}` says nothing and many clients send it with every PATCH: only a body that says something is refused.
    if (request.body !== undefined && request.routeOptions.schema?.body === undefined && !isEmptyObject(request.body)) throw unexpectedBody()
    // Decoded by the router and fast-querystring: `%00` arrives here as U+0000.
    for (const [where, value] of [['params', request.params], ['query', request.query]] as const) {
      const flaw = inspectJson(value, where, MAX_BODY_DEPTH)
      if (flaw) throw flawError(flaw, MAX_BODY_DEPTH)
    }
  })
}

function isEmptyObject(value: unknown): boolean {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && Object.keys(value).length === 0
}

export default fp(inputPlugin, { name: 'input', dependencies: ['problem'] })
