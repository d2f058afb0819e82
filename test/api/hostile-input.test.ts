// Hostile and malformed requests against every route: each is a specific 4xx
// problem document, never a 5xx, and none of them changes anything.
import type { InjectOptions } from 'fastify'
import t from 'tap'
import { assertMetadata, METADATA_MAX_BYTES, METADATA_MAX_DEPTH } from '../../src/api/metadata.js'
import { MAX_BODY_DEPTH } from '../../src/api/input.js'
import { inspectJson } from '../../src/api/json-inspect.js'
import { auth, setup } from '../helpers.js'

interface Case {
  name: string
  method: NonNullable<InjectOptions['method']>
  url: string
  headers?: Record<string, string>
  payload?: string | Buffer | object
  status: number
  code: string
}

const cursor = (seq: string) => Buffer.from(seq).toString('base64url')
/** `{"a":{"a":…1…}}`: `levels` objects, as text (a deep object literal would need recursion to build). */
const nestedText = (levels: number) => `${'{"a":'.repeat(levels)}1${'}'.repeat(levels)}`
const nested = (levels: number): unknown => JSON.parse(nestedText(levels))
const json = { ...auth, 'content-type': 'application/json' }
const NO_ENDPOINT = '00000000-0000-4000-8000-000000000000'
const KEY_8000 = 'k'.repeat(8000)

const CASES: Case[] = [
  // Cursors and limits
  { name: 'a cursor beyond bigint (max + 1)', method: 'GET', url: `/tenants?cursor=${cursor('9223372036854775808')}`, status: 400, code: 'LANDLORD_INVALID_CURSOR' },
  { name: 'a 19-nines cursor', method: 'GET', url: `/tenants?cursor=${cursor('9999999999999999999')}`, status: 400, code: 'LANDLORD_INVALID_CURSOR' },
  { name: 'an events cursor beyond bigint', method: 'GET', url: `/tenants/target/events?cursor=${cursor('9223372036854775808')}`, status: 400, code: 'LANDLORD_INVALID_CURSOR' },
  { name: 'a cursor of 0', method: 'GET', url: `/tenants?cursor=${cursor('0')}`, status: 400, code: 'LANDLORD_INVALID_CURSOR' },
  { name: 'a negative cursor', method: 'GET', url: `/tenants?cursor=${cursor('-1')}`, status: 400, code: 'LANDLORD_INVALID_CURSOR' },
  { name: 'a cursor with junk Buffer would skip', method: 'GET', url: `/tenants?cursor=${cursor('12')}!!`, status: 400, code: 'LANDLORD_INVALID_CURSOR' },
  { name: 'a deliveries cursor beyond bigint', method: 'GET', url: `/webhook-endpoints/${NO_ENDPOINT}/deliveries?cursor=${cursor('9223372036854775808')}`, status: 400, code: 'LANDLORD_INVALID_CURSOR' },
  { name: 'limit 0', method: 'GET', url: '/tenants?limit=0', status: 400, code: 'LANDLORD_VALIDATION_FAILED' },
  { name: 'a 30-digit limit', method: 'GET', url: `/tenants?limit=${'9'.repeat(30)}`, status: 400, code: 'LANDLORD_VALIDATION_FAILED' },
  // ajv coerces these to ±Infinity, which passes `minimum` and `maximum`; Postgres refused them with a 500.
  { name: 'limit 1e400', method: 'GET', url: '/tenants/target/events?limit=1e400', status: 400, code: 'LANDLORD_INVALID_NUMBER' },
  { name: 'limit Infinity', method: 'GET', url: '/tenants?limit=Infinity', status: 400, code: 'LANDLORD_INVALID_NUMBER' },
  { name: 'a deliveries limit of -Infinity', method: 'GET', url: `/webhook-endpoints/${NO_ENDPOINT}/deliveries?limit=-Infinity`, status: 400, code: 'LANDLORD_INVALID_NUMBER' },
  { name: 'a negative events limit', method: 'GET', url: '/tenants/target/events?limit=-1', status: 400, code: 'LANDLORD_VALIDATION_FAILED' },

  // NUL characters and lone surrogates
  { name: 'NUL in name', method: 'POST', url: '/tenants', headers: auth, payload: { slug: 'nul_name', name: 'a\u0000b' }, status: 400, code: 'LANDLORD_INVALID_TEXT' },
  { name: 'NUL in a metadata value', method: 'POST', url: '/tenants', headers: auth, payload: { slug: 'nul_meta', metadata: { crm: 'A\u0000' } }, status: 400, code: 'LANDLORD_INVALID_TEXT' },
  { name: 'NUL in a nested metadata key', method: 'POST', url: '/tenants', headers: json, payload: '{"slug":"nul_key","metadata":{"a":{"k\\u0000":1}}}', status: 400, code: 'LANDLORD_INVALID_TEXT' },
  { name: 'a lone high surrogate in name', method: 'POST', url: '/tenants', headers: json, payload: '{"slug":"lone_hi","name":"x\\ud800"}', status: 400, code: 'LANDLORD_INVALID_TEXT' },
  { name: 'a lone low surrogate in a metadata array', method: 'POST', url: '/tenants', headers: json, payload: '{"slug":"lone_lo","metadata":{"tags":["ok","\\udc00"]}}', status: 400, code: 'LANDLORD_INVALID_TEXT' },
  { name: 'NUL in a suspension reason', method: 'PATCH', url: '/tenants/target/suspend', headers: auth, payload: { reason: 'fraud\u0000' }, status: 400, code: 'LANDLORD_INVALID_TEXT' },
  { name: 'NUL in a legal hold reason', method: 'PUT', url: '/tenants/target/legal-hold', headers: auth, payload: { reason: '\u0000' }, status: 400, code: 'LANDLORD_INVALID_TEXT' },
  { name: 'NUL in a webhook description', method: 'POST', url: '/webhook-endpoints', headers: auth, payload: { url: 'https://billing.example.com/hook', description: 'a\u0000' }, status: 400, code: 'LANDLORD_INVALID_TEXT' },
  { name: '%00 in the query string', method: 'GET', url: '/tenants?state=%00', status: 400, code: 'LANDLORD_INVALID_TEXT' },
  { name: '%00 in a query value of a route without a query schema', method: 'GET', url: '/tenants/target?x=a%00', status: 400, code: 'LANDLORD_INVALID_TEXT' },
  { name: '%00 as :id', method: 'GET', url: '/tenants/%00', status: 400, code: 'LANDLORD_INVALID_TEXT' },
  { name: '%00 inside :id of a write', method: 'PATCH', url: '/tenants/target%00/hibernate', status: 400, code: 'LANDLORD_INVALID_TEXT' },

  // Depth, size and numbers
  { name: 'metadata 5,000 levels deep', method: 'POST', url: '/tenants', headers: json, payload: `{"slug":"deep_meta","metadata":${nestedText(5000)}}`, status: 400, code: 'LANDLORD_BODY_TOO_DEEP' },
  { name: 'a top-level array 100,000 levels deep', method: 'POST', url: '/tenants', headers: json, payload: `${'['.repeat(100_000)}${']'.repeat(100_000)}`, status: 400, code: 'LANDLORD_BODY_TOO_DEEP' },
  { name: 'a deep body on a webhook route', method: 'PATCH', url: `/webhook-endpoints/${NO_ENDPOINT}`, headers: json, payload: `{"description":${nestedText(MAX_BODY_DEPTH + 1)}}`, status: 400, code: 'LANDLORD_BODY_TOO_DEEP' },
  { name: 'metadata one level deeper than its bound', method: 'POST', url: '/tenants', headers: auth, payload: { slug: 'deep_nine', metadata: nested(METADATA_MAX_DEPTH + 1) as object }, status: 400, code: 'LANDLORD_INVALID_METADATA' },
  { name: 'metadata over 16 KiB', method: 'POST', url: '/tenants', headers: auth, payload: { slug: 'big_meta', metadata: { blob: 'x'.repeat(METADATA_MAX_BYTES) } }, status: 400, code: 'LANDLORD_INVALID_METADATA' },
  { name: 'a number that overflows to Infinity', method: 'POST', url: '/tenants', headers: json, payload: '{"slug":"inf_meta","metadata":{"n":1e999}}', status: 400, code: 'LANDLORD_INVALID_NUMBER' },
  { name: 'a body over 256 KiB', method: 'POST', url: '/tenants', headers: json, payload: JSON.stringify({ slug: 'huge', name: 'x'.repeat(300_000) }), status: 413, code: 'LANDLORD_BODY_TOO_LARGE' },
  { name: 'a name beyond maxLength', method: 'POST', url: '/tenants', headers: auth, payload: { slug: 'long_name', name: 'x'.repeat(201) }, status: 400, code: 'LANDLORD_VALIDATION_FAILED' },
  { name: 'a legal hold reason beyond maxLength', method: 'PUT', url: '/tenants/target/legal-hold', headers: auth, payload: { reason: 'x'.repeat(501) }, status: 400, code: 'LANDLORD_VALIDATION_FAILED' },

  // Idempotency-Key
  { name: 'an 8,000-character Idempotency-Key on credentials', method: 'POST', url: '/tenants/target/credentials', headers: { ...auth, 'idempotency-key': KEY_8000 }, status: 400, code: 'LANDLORD_INVALID_IDEMPOTENCY_KEY' },
  { name: 'a non-ASCII Idempotency-Key on credentials', method: 'POST', url: '/tenants/target/credentials', headers: { ...auth, 'idempotency-key': 'clé-1' }, status: 400, code: 'LANDLORD_INVALID_IDEMPOTENCY_KEY' },
  { name: 'an empty Idempotency-Key on credentials', method: 'POST', url: '/tenants/target/credentials', headers: { ...auth, 'idempotency-key': '' }, status: 400, code: 'LANDLORD_INVALID_IDEMPOTENCY_KEY' },
  { name: 'an Idempotency-Key with a space on credentials', method: 'POST', url: '/tenants/target/credentials', headers: { ...auth, 'idempotency-key': 'a b' }, status: 400, code: 'LANDLORD_INVALID_IDEMPOTENCY_KEY' },
  { name: 'an 8,000-character Idempotency-Key on create', method: 'POST', url: '/tenants', headers: { ...auth, 'idempotency-key': KEY_8000 }, payload: { slug: 'long_key' }, status: 400, code: 'LANDLORD_INVALID_IDEMPOTENCY_KEY' },
  { name: 'a non-ASCII Idempotency-Key on create', method: 'POST', url: '/tenants', headers: { ...auth, 'idempotency-key': 'ключ' }, payload: { slug: 'cyr_key' }, status: 400, code: 'LANDLORD_INVALID_IDEMPOTENCY_KEY' },
  { name: 'a reserved slug with a valid Idempotency-Key stores no key', method: 'POST', url: '/tenants', headers: { ...auth, 'idempotency-key': 'reserved-1' }, payload: { slug: 'template1' }, status: 400, code: 'LANDLORD_INVALID_SLUG' },
  { name: 'deep metadata with a valid Idempotency-Key stores no key', method: 'POST', url: '/tenants', headers: { ...auth, 'idempotency-key': 'deep-1' }, payload: { slug: 'deep_key', metadata: nested(METADATA_MAX_DEPTH + 1) as object }, status: 400, code: 'LANDLORD_INVALID_METADATA' },

  // Retention
  { name: 'retention in years', method: 'DELETE', url: '/tenants/target?retention=P99999999999Y', status: 400, code: 'LANDLORD_INVALID_RETENTION' },
  { name: 'a negative retention', method: 'DELETE', url: '/tenants/target?retention=PT-1S', status: 400, code: 'LANDLORD_INVALID_RETENTION' },
  { name: 'a retention of 10^28 weeks', method: 'DELETE', url: `/tenants/target?retention=P${'9'.repeat(28)}W`, status: 400, code: 'LANDLORD_INVALID_RETENTION' },
  { name: 'a retention one day over ten years', method: 'DELETE', url: '/tenants/target?retention=P3651D', status: 400, code: 'LANDLORD_INVALID_RETENTION' },
  { name: 'a retention beyond its maxLength', method: 'DELETE', url: `/tenants/target?retention=P${'1'.repeat(40)}D`, status: 400, code: 'LANDLORD_VALIDATION_FAILED' },

  // Ids where a uuid is expected, and :id itself
  { name: 'a non-uuid webhook endpoint id', method: 'GET', url: '/webhook-endpoints/not-a-uuid', status: 404, code: 'LANDLORD_WEBHOOK_ENDPOINT_NOT_FOUND' },
  { name: 'SQL as a webhook endpoint id', method: 'DELETE', url: `/webhook-endpoints/${encodeURIComponent("1' OR '1'='1")}`, status: 404, code: 'LANDLORD_WEBHOOK_ENDPOINT_NOT_FOUND' },
  { name: 'a non-uuid delivery id', method: 'POST', url: '/webhook-deliveries/not-a-uuid/retry', status: 404, code: 'LANDLORD_WEBHOOK_DELIVERY_NOT_FOUND' },
  { name: 'a non-uuid endpoint id for deliveries', method: 'GET', url: '/webhook-endpoints/12345/deliveries', status: 404, code: 'LANDLORD_WEBHOOK_ENDPOINT_NOT_FOUND' },
  { name: 'a 65-character webhook endpoint id', method: 'GET', url: `/webhook-endpoints/${'a'.repeat(65)}`, status: 400, code: 'LANDLORD_VALIDATION_FAILED' },
  { name: 'a 65-character tenant id', method: 'GET', url: `/tenants/${'a'.repeat(65)}`, status: 400, code: 'LANDLORD_VALIDATION_FAILED' },
  { name: 'a 65-character tenant id on a write', method: 'PATCH', url: `/tenants/${'a'.repeat(65)}/suspend`, status: 400, code: 'LANDLORD_VALIDATION_FAILED' },
  { name: 'a malformed percent-encoding in :id', method: 'GET', url: '/tenants/%E0%A4%A', status: 400, code: 'LANDLORD_INVALID_URL' },
  { name: 'an encoded lone surrogate in :id', method: 'GET', url: '/tenants/%ED%A0%80', status: 400, code: 'LANDLORD_INVALID_URL' },
  { name: 'a :id beyond the router parameter limit', method: 'GET', url: `/tenants/${'a'.repeat(200)}/status`, status: 414, code: 'LANDLORD_URI_TOO_LONG' },

  // Unknown fields
  { name: 'an unknown body field', method: 'POST', url: '/tenants', headers: auth, payload: { slug: 'okslug', owner: 'me' }, status: 400, code: 'LANDLORD_VALIDATION_FAILED' },
  { name: 'an unknown field beside a reason', method: 'PATCH', url: '/tenants/target/suspend', headers: auth, payload: { reason: 'x', force: true }, status: 400, code: 'LANDLORD_VALIDATION_FAILED' },
  { name: 'an unknown query parameter', method: 'GET', url: '/tenants/target/events?sort=desc', status: 400, code: 'LANDLORD_VALIDATION_FAILED' },
  { name: '__proto__ in a body', method: 'POST', url: '/tenants', headers: json, payload: '{"slug":"proto","__proto__":{"admin":true}}', status: 400, code: 'LANDLORD_INVALID_JSON' },

  // Content types and malformed JSON
  { name: 'text/plain', method: 'POST', url: '/tenants', headers: { ...auth, 'content-type': 'text/plain' }, payload: '{"slug":"plain"}', status: 415, code: 'LANDLORD_UNSUPPORTED_MEDIA_TYPE' },
  { name: 'a form body', method: 'POST', url: '/tenants', headers: { ...auth, 'content-type': 'application/x-www-form-urlencoded' }, payload: 'slug=formed', status: 415, code: 'LANDLORD_UNSUPPORTED_MEDIA_TYPE' },
  { name: 'XML for a legal hold', method: 'PUT', url: '/tenants/target/legal-hold', headers: { ...auth, 'content-type': 'application/xml' }, payload: '<reason>x</reason>', status: 415, code: 'LANDLORD_UNSUPPORTED_MEDIA_TYPE' },
  { name: 'a body that is not UTF-8', method: 'POST', url: '/tenants', headers: json, payload: Buffer.from([0x7b, 0x22, 0x73, 0x6c, 0x75, 0x67, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x7d]), status: 400, code: 'LANDLORD_INVALID_JSON' },
  { name: 'truncated JSON', method: 'POST', url: '/tenants', headers: json, payload: '{"slug": ', status: 400, code: 'LANDLORD_INVALID_JSON' },

  // Missing, extra and misshapen bodies
  { name: 'no body where one is required', method: 'POST', url: '/tenants', headers: auth, status: 400, code: 'LANDLORD_VALIDATION_FAILED' },
  { name: 'an empty JSON body', method: 'POST', url: '/tenants', headers: json, payload: '', status: 400, code: 'LANDLORD_EMPTY_BODY' },
  { name: 'no body for a legal hold', method: 'PUT', url: '/tenants/target/legal-hold', headers: auth, status: 400, code: 'LANDLORD_VALIDATION_FAILED' },
  { name: 'null for a legal hold', method: 'PUT', url: '/tenants/target/legal-hold', headers: json, payload: 'null', status: 400, code: 'LANDLORD_VALIDATION_FAILED' },
  { name: 'no body for a webhook endpoint', method: 'POST', url: '/webhook-endpoints', headers: auth, status: 400, code: 'LANDLORD_VALIDATION_FAILED' },
  { name: 'a body on hibernate', method: 'PATCH', url: '/tenants/target/hibernate', headers: auth, payload: { now: true }, status: 400, code: 'LANDLORD_UNEXPECTED_BODY' },
  { name: 'a body on decommission', method: 'DELETE', url: '/tenants/target', headers: auth, payload: { retention: 'PT0S' }, status: 400, code: 'LANDLORD_UNEXPECTED_BODY' },
  { name: 'an array on rotate-credentials', method: 'POST', url: '/tenants/target/rotate-credentials', headers: auth, payload: [], status: 400, code: 'LANDLORD_UNEXPECTED_BODY' },
  { name: 'a body on releasing a legal hold', method: 'DELETE', url: '/tenants/target/legal-hold', headers: auth, payload: { reason: 'x' }, status: 400, code: 'LANDLORD_UNEXPECTED_BODY' },
  { name: 'a JSON array instead of an object', method: 'POST', url: '/tenants', headers: json, payload: '[{"slug":"arrayed"}]', status: 400, code: 'LANDLORD_VALIDATION_FAILED' },
  { name: 'a JSON string instead of an object', method: 'POST', url: '/tenants', headers: json, payload: '"stringed"', status: 400, code: 'LANDLORD_VALIDATION_FAILED' },
  { name: 'a JSON array as a suspension body', method: 'PATCH', url: '/tenants/target/suspend', headers: json, payload: '[]', status: 400, code: 'LANDLORD_VALIDATION_FAILED' },

  // Slugs
  { name: 'an uppercase slug', method: 'POST', url: '/tenants', headers: auth, payload: { slug: 'Acme' }, status: 400, code: 'LANDLORD_VALIDATION_FAILED' },
  { name: 'a slug with an accent', method: 'POST', url: '/tenants', headers: auth, payload: { slug: 'acmé' }, status: 400, code: 'LANDLORD_VALIDATION_FAILED' },
  { name: 'a fullwidth slug', method: 'POST', url: '/tenants', headers: auth, payload: { slug: 'ａｃｍｅ' }, status: 400, code: 'LANDLORD_VALIDATION_FAILED' },
  { name: 'a reserved slug', method: 'POST', url: '/tenants', headers: auth, payload: { slug: 'postgres' }, status: 400, code: 'LANDLORD_INVALID_SLUG' },
  { name: 'a pg_ slug', method: 'POST', url: '/tenants', headers: auth, payload: { slug: 'pg_shadow' }, status: 400, code: 'LANDLORD_INVALID_SLUG' },

  // Authorization
  { name: 'no Authorization', method: 'GET', url: '/tenants', headers: {}, status: 401, code: 'LANDLORD_UNAUTHORIZED' },
  { name: 'Basic credentials', method: 'GET', url: '/tenants', headers: { authorization: 'Basic YWRtaW46YWRtaW4=' }, status: 401, code: 'LANDLORD_UNAUTHORIZED' },
  { name: 'an empty bearer', method: 'GET', url: '/tenants', headers: { authorization: 'Bearer ' }, status: 401, code: 'LANDLORD_UNAUTHORIZED' },
  { name: 'an empty Authorization', method: 'GET', url: '/tenants', headers: { authorization: '' }, status: 401, code: 'LANDLORD_UNAUTHORIZED' },
  { name: 'a 10,000-character bearer', method: 'POST', url: '/tenants', headers: { authorization: `Bearer ${'x'.repeat(10_000)}` }, payload: { slug: 'bearer_long' }, status: 401, code: 'LANDLORD_UNAUTHORIZED' },
  { name: 'a bearer with two tokens', method: 'DELETE', url: '/tenants/target?retention=PT0S', headers: { authorization: `Bearer ${auth.authorization.slice(7)} x` }, status: 401, code: 'LANDLORD_UNAUTHORIZED' },
  { name: 'no key with a hostile body: refused before it is parsed', method: 'POST', url: '/tenants', headers: { 'content-type': 'application/json' }, payload: nestedText(5000), status: 401, code: 'LANDLORD_UNAUTHORIZED' },
]

t.test('bounds are exact and the walk needs no recursion', async (t) => {
  t.doesNotThrow(() => assertMetadata(nested(METADATA_MAX_DEPTH)), `${METADATA_MAX_DEPTH} levels are accepted`)
  t.throws(() => assertMetadata(nested(METADATA_MAX_DEPTH + 1)), { code: 'LANDLORD_INVALID_METADATA' })
  // {"b":"xxx…"} is 8 bytes of JSON around the string.
  t.doesNotThrow(() => assertMetadata({ b: 'x'.repeat(METADATA_MAX_BYTES - 8) }), 'exactly 16 KiB is accepted')
  t.throws(() => assertMetadata({ b: 'x'.repeat(METADATA_MAX_BYTES - 7) }), { code: 'LANDLORD_INVALID_METADATA' })
  t.doesNotThrow(() => assertMetadata({ emoji: '😀', text: 'ünïcode' }), 'surrogate pairs are well-formed text')
  // Built in a loop: deeper than any recursive walk (or JSON.stringify) survives.
  let deep: unknown = 1
  for (let i = 0; i < 200_000; i++) deep = [deep]
  t.same(inspectJson(deep, 'body', MAX_BODY_DEPTH), { kind: 'depth', path: `body${'[0]'.repeat(MAX_BODY_DEPTH)}` })
  t.equal(inspectJson(nested(MAX_BODY_DEPTH), 'body', MAX_BODY_DEPTH), undefined, `${MAX_BODY_DEPTH} levels pass`)
  t.same(inspectJson({ 'a\u0000': 1 }, 'body', MAX_BODY_DEPTH), { kind: 'text', path: 'body["a\\u0000"]' })
})

t.test('hostile input is a 4xx problem and changes nothing', async (t) => {
  t.ok(CASES.length >= 40, `${CASES.length} cases`)
  const h = await setup(t)
  const { app, db } = h
  // Workers make the target active, so a request that slipped through would really act on it.
  await h.startWorkers()
  const created = await app.inject({ method: 'POST', url: '/tenants', headers: auth, payload: { slug: 'target', name: 'Target', metadata: { crm: 'T-1' } } })
  t.equal(created.statusCode, 202)
  await h.waitForState('target', 'active')

  const count = async (table: 'tenants' | 'webhook_endpoints' | 'idempotency_keys' | 'leases' | 'outbox' | 'tenant_events') =>
    Number((await db.selectFrom(table).select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n)
  const snapshot = async () => ({
    tenants: await count('tenants'),
    webhook_endpoints: await count('webhook_endpoints'),
    idempotency_keys: await count('idempotency_keys'),
    leases: await count('leases'),
    outbox: await count('outbox'),
    tenant_events: await count('tenant_events'),
    target: await db
      .selectFrom('tenants')
      .select(['name', 'metadata', 'state', 'version', 'legal_hold_at', 'wipe_after'])
      .where('slug', '=', 'target')
      .executeTakeFirstOrThrow(),
  })
  const before = await snapshot()
  t.match(before.target, { name: 'Target', metadata: { crm: 'T-1' }, state: 'active', legal_hold_at: null, wipe_after: null })

  for (const c of CASES) {
    t.test(c.name, async (t) => {
      const res = await app.inject({ method: c.method, url: c.url, headers: c.headers ?? auth, ...(c.payload === undefined ? {} : { payload: c.payload }) })
      t.equal(res.statusCode, c.status, `${c.method} ${c.url.slice(0, 80)}`)
      t.match(res.headers['content-type'], /^application\/problem\+json/)
      const body = res.json()
      t.match(body, { type: String, title: String, status: c.status, code: c.code }, body.detail)
    })
  }

  t.test('nothing was created or changed', async (t) => {
    t.same(await snapshot(), before)
    const dbs = await h.cluster.query<{ datname: string }>("SELECT datname FROM pg_database WHERE datname LIKE $1 || '%' ORDER BY 1", [
      h.config.tenantDbPrefix.replace(/_/g, '\\_'),
    ])
    t.same(
      dbs.rows.map((r) => r.datname),
      [`${h.config.tenantDbPrefix}target`],
      "only the target's database exists on the cluster",
    )
  })
})
