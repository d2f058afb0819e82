// What the OpenAPI document says of rate limiting, added to every limited
// operation in one place: the RateLimit-* headers on each response, and a
// 429 problem with Retry-After (its body is the operation's 401 problem).
type Json = Record<string, unknown>

const intHeader = (description: string) => ({ description, schema: { type: 'integer', minimum: 0 } })

const HEADERS = {
  'RateLimit-Limit': intHeader('Requests allowed per window for this API key'),
  'RateLimit-Remaining': intHeader('Requests left in the current window'),
  'RateLimit-Reset': intHeader('Seconds until the window resets'),
}

const UNLIMITED = new Set(['healthz', 'readyz'])

export function declareRateLimits(doc: Json): Json {
  const components = (doc.components ??= {}) as Json
  components.headers = { ...((components.headers) ?? {}), ...HEADERS, 'Retry-After': intHeader('Seconds to wait before retrying') }
  const ref = (name: string) => ({ $ref: `#/components/headers/${name}` })
  const limitHeaders = Object.fromEntries(Object.keys(HEADERS).map((h) => [h, ref(h)]))
  for (const item of Object.values((doc.paths ?? {}) as Record<string, Record<string, Json>>)) {
    for (const op of Object.values(item)) {
      if (UNLIMITED.has(op.operationId as string)) continue
      const responses = (op.responses ?? {}) as Record<string, Json>
      for (const response of Object.values(responses)) response.headers = { ...((response.headers) ?? {}), ...limitHeaders }
      const problem = responses['401']
      if (problem && !responses['429']) {
        responses['429'] = { description: 'Too many requests for this API key', content: problem.content, headers: { ...limitHeaders, 'Retry-After': ref('Retry-After') } }
      }
      op.responses = responses
    }
  }
  return doc
}
