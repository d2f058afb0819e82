// Every error code Landlord answers with, each made by one factory here. The
// API's one error handler turns them into RFC 9457 problem documents; anything
// else is a 500 with a generic body.

export class LandlordError extends Error {
  constructor(
    readonly code: string,
    readonly status: number,
    readonly title: string,
    detail: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(detail)
    this.name = 'LandlordError'
  }
}

export const tenantNotFound = (ref: string) =>
  new LandlordError('LANDLORD_TENANT_NOT_FOUND', 404, 'Tenant not found', `No tenant "${ref}".`)

export const slugTaken = (slug: string) =>
  new LandlordError('LANDLORD_SLUG_TAKEN', 409, 'Slug already taken', `A tenant with slug "${slug}" already exists.`)

export const invalidSlug = (slug: string, why: string) =>
  new LandlordError('LANDLORD_INVALID_SLUG', 400, 'Invalid slug', `Slug "${slug}" ${why}.`)

export const eventNotAllowed = (event: string, state: string, allowed: string[]) =>
  new LandlordError(
    'LANDLORD_TRANSITION_NOT_ALLOWED',
    409,
    'Transition not allowed',
    `${event} is not allowed while the tenant is ${state}.`,
    { state, allowed_events: allowed },
  )

export const concurrentChange = () =>
  new LandlordError(
    'LANDLORD_CONCURRENT_CHANGE',
    409,
    'Concurrent change',
    'The tenant changed while this request was applied; read it again and retry.',
  )

export const legalHoldBlocks = (reason: string | null) =>
  new LandlordError(
    'LANDLORD_LEGAL_HOLD',
    409,
    'Legal hold',
    `The tenant is under legal hold${reason ? ` (${reason})` : ''}; its data cannot be wiped until the hold is released.`,
  )

export const retentionExpired = (wipeAfter: Date) =>
  new LandlordError(
    'LANDLORD_RETENTION_EXPIRED',
    409,
    'Retention expired',
    `The retention period ended at ${wipeAfter.toISOString()}; the tenant can no longer be restored.`,
  )

export const tenantLocked = (state: string) =>
  new LandlordError('LANDLORD_TENANT_LOCKED', 423, 'Tenant locked', `The tenant is ${state}: no credentials are issued.`, { state })

export const tenantNotReady = (state: string) =>
  new LandlordError('LANDLORD_TENANT_NOT_READY', 409, 'Tenant not ready', `The tenant is ${state}: no credentials are issued.`, { state })

export const wakeTimedOut = (seconds: number) =>
  new LandlordError(
    'LANDLORD_WAKE_TIMEOUT',
    503,
    'Tenant still waking',
    `The tenant did not wake within ${seconds} s; retry shortly.`,
    { retry_after: 5 },
  )

export const holdNotAllowed = (state: string) =>
  new LandlordError('LANDLORD_HOLD_NOT_ALLOWED', 409, 'Legal hold not allowed', `The tenant is ${state}: there is no data left to hold.`, { state })

export const endpointNotFound = (id: string) =>
  new LandlordError('LANDLORD_WEBHOOK_ENDPOINT_NOT_FOUND', 404, 'Webhook endpoint not found', `No webhook endpoint "${id}".`)

export const deliveryNotFound = (id: string) =>
  new LandlordError('LANDLORD_WEBHOOK_DELIVERY_NOT_FOUND', 404, 'Webhook delivery not found', `No webhook delivery "${id}".`)

export const deliveryInFlight = (status: string) =>
  new LandlordError('LANDLORD_WEBHOOK_DELIVERY_SCHEDULED', 409, 'Delivery already scheduled', `The delivery is ${status}: it will be attempted without being asked.`, { delivery_status: status })

export const invalidWebhookUrl = (why: string) => new LandlordError('LANDLORD_INVALID_WEBHOOK_URL', 400, 'Invalid webhook URL', why)

export const tenantGone = (state: string) =>
  new LandlordError('LANDLORD_TENANT_WIPED', 409, 'Tenant wiped', `The tenant is ${state}: it has no database and no credentials left.`, { state })

export const endpointManaged = () =>
  new LandlordError(
    'LANDLORD_WEBHOOK_ENDPOINT_MANAGED',
    409,
    'Endpoint managed by configuration',
    'This endpoint comes from BILLING_WEBHOOK_URL: unset the variable to remove it, or disable it with PATCH {"enabled": false}.',
  )

// Hostile or malformed input: always a 400 naming where, never a 500.

/** Postgres `text` and `jsonb` refuse U+0000 and lone surrogates: refused before they reach it. */
export const invalidText = (path: string) =>
  new LandlordError(
    'LANDLORD_INVALID_TEXT',
    400,
    'Invalid text',
    `${path} contains a NUL character or a lone UTF-16 surrogate.`,
    { errors: [{ path, message: 'contains a NUL character or a lone UTF-16 surrogate' }] },
  )

export const bodyTooDeep = (path: string, maxDepth: number) =>
  new LandlordError('LANDLORD_BODY_TOO_DEEP', 400, 'Body nested too deeply', `${path} is nested more than ${maxDepth} levels deep.`, {
    errors: [{ path, message: `is nested more than ${maxDepth} levels deep` }],
  })

export const invalidNumber = (path: string) =>
  new LandlordError('LANDLORD_INVALID_NUMBER', 400, 'Invalid number', `${path} is beyond the range of a JSON number.`, {
    errors: [{ path, message: 'is beyond the range of a JSON number' }],
  })

export const invalidMetadata = (why: string) =>
  new LandlordError('LANDLORD_INVALID_METADATA', 400, 'Invalid metadata', `metadata ${why}.`, { errors: [{ path: 'body.metadata', message: why }] })

export const invalidIdempotencyKey = () =>
  new LandlordError('LANDLORD_INVALID_IDEMPOTENCY_KEY', 400, 'Invalid Idempotency-Key', 'Idempotency-Key must be 1-255 visible ASCII characters.')

export const unexpectedBody = () =>
  new LandlordError('LANDLORD_UNEXPECTED_BODY', 400, 'Unexpected body', 'This route takes no request body; send none.')

export const webhookUrlForbidden = (detail: string) =>
  new LandlordError('LANDLORD_WEBHOOK_URL_FORBIDDEN', 400, 'Webhook URL not allowed', detail)

export const clusterObjectsNotOurs = (reason: string) =>
  new LandlordError(
    'LANDLORD_CLUSTER_OBJECTS_NOT_OURS',
    409,
    "Tenant objects not Landlord's",
    `${reason[0]?.toUpperCase() ?? ''}${reason.slice(1)}. Nothing was changed; an operator must reconcile the cluster.`,
  )

// The API's own refusals: authentication, idempotency, routing and malformed requests.

export const unauthorized = (keyPresented: boolean) =>
  new LandlordError(
    'LANDLORD_UNAUTHORIZED',
    401,
    'Unauthorized',
    keyPresented ? 'The API key is not valid.' : 'Send Authorization: Bearer <api key>.',
  )

export const idempotencyKeyReused = () =>
  new LandlordError('LANDLORD_IDEMPOTENCY_KEY_REUSED', 422, 'Unprocessable content', 'This Idempotency-Key was used with a different request.')

export const idempotencyInProgress = () =>
  new LandlordError('LANDLORD_IDEMPOTENCY_IN_PROGRESS', 409, 'Conflict', 'A request with this Idempotency-Key is still being processed; retry later.')

export const routeNotFound = (method: string, path: string) =>
  new LandlordError('LANDLORD_ROUTE_NOT_FOUND', 404, 'Not found', `No route ${method} ${path}.`)

export const malformedUrl = () =>
  new LandlordError('LANDLORD_INVALID_URL', 400, 'Bad request', 'The URL path holds a malformed percent-encoding.')

export const uriTooLong = () =>
  new LandlordError('LANDLORD_URI_TOO_LONG', 414, 'URI too long', 'A path parameter is longer than the router accepts.')

export const validationFailed = (errors: Array<{ path: string; message: string }>) =>
  new LandlordError('LANDLORD_VALIDATION_FAILED', 400, 'Bad request', errors.map((e) => `${e.path} ${e.message}`).join('; '), { errors })

export const invalidJson = (detail: string) => new LandlordError('LANDLORD_INVALID_JSON', 400, 'Bad request', detail)

export const invalidCursor = () => new LandlordError('LANDLORD_INVALID_CURSOR', 400, 'Bad request', 'The cursor is not one this API returned.')

export const invalidRetention = (raw: string | undefined) =>
  new LandlordError(
    'LANDLORD_INVALID_RETENTION',
    400,
    'Bad request',
    `retention must be an ISO 8601 duration of at most P3650D, such as P30D or PT0S; got "${raw}".`,
  )

/** The body of a 5xx says nothing of the cause: that goes to the log. */
export const internalError = () =>
  new LandlordError('LANDLORD_INTERNAL', 500, 'Internal server error', 'An internal error occurred; it has been logged.')

/** Fastify's own 4xx errors for malformed requests, under stable Landlord codes. */
const FRAMEWORK_CODES: Record<string, string> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'LANDLORD_UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'LANDLORD_INVALID_CONTENT_LENGTH',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'LANDLORD_EMPTY_BODY',
  FST_ERR_CTP_INVALID_JSON_BODY: 'LANDLORD_INVALID_JSON',
  FST_ERR_CTP_BODY_TOO_LARGE: 'LANDLORD_BODY_TOO_LARGE',
}

const FRAMEWORK_TITLES: Record<number, string> = {
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

/**
 * A 4xx Fastify raised itself (a body parser, a content-type check), with
 * Fastify's message as the detail. A Fastify code missing from the table
 * above is passed through as is.
 */
export const frameworkRefusal = (status: number, fastifyCode: string | undefined, detail: string) =>
  new LandlordError(
    (fastifyCode !== undefined ? FRAMEWORK_CODES[fastifyCode] : undefined) ?? fastifyCode ?? 'LANDLORD_BAD_REQUEST',
    status,
    FRAMEWORK_TITLES[status] ?? 'Error',
    detail,
  )

/** Vault sealed, unreachable or failing: the request may succeed later. The detail never holds a token. */
export const vaultUnavailable = (reason: string) =>
  new LandlordError('LANDLORD_VAULT_UNAVAILABLE', 503, 'Secrets backend unavailable', `${reason}; retry shortly.`, { retry_after: 5 })

export const fleetRunNotFound = (id: string) =>
  new LandlordError('LANDLORD_FLEET_MIGRATION_NOT_FOUND', 404, 'Fleet migration not found', `No fleet migration "${id}".`)

export const fleetRunOpen = (id: string) =>
  new LandlordError('LANDLORD_FLEET_MIGRATION_RUNNING', 409, 'A fleet migration is running', `Fleet migration ${id} is still running; one runs at a time.`, { running: id })

export const fleetRunFinished = (id: string, status: string) =>
  new LandlordError('LANDLORD_FLEET_MIGRATION_FINISHED', 409, 'Fleet migration finished', `Fleet migration ${id} is over (${status}).`, { status })

export const fleetRunNotFinished = (id: string) =>
  new LandlordError('LANDLORD_FLEET_MIGRATION_NOT_FINISHED', 409, 'Fleet migration not finished', `Fleet migration ${id} is still running; retry it once it is over.`)

export const nothingToRetry = (id: string) =>
  new LandlordError('LANDLORD_NOTHING_TO_RETRY', 409, 'Nothing to retry', `Fleet migration ${id} has no failed tenant.`)

export const unknownTenants = (slugs: string[]) =>
  new LandlordError('LANDLORD_UNKNOWN_TENANTS', 422, 'Unknown tenants', `No tenant (or only a wiped one) for: ${slugs.join(', ')}.`, { tenants: slugs })

export const unknownTargetVersion = (version: number, known: number[]) =>
  new LandlordError(
    'LANDLORD_UNKNOWN_TARGET_VERSION',
    422,
    'Unknown target version',
    `No tenant migration has version ${version}; the folder holds ${known.length > 0 ? known.join(', ') : 'none'}.`,
  )

export const migrationsInvalid = (message: string) =>
  new LandlordError('LANDLORD_MIGRATIONS_INVALID', 409, 'Tenant migrations invalid', `The tenant migrations folder cannot be used: ${message}`)

export const forbidden = (scope: string) =>
  new LandlordError('LANDLORD_FORBIDDEN', 403, 'Forbidden', `This API key's principal lacks the "${scope}" scope.`, { required_scope: scope })

export const needsEveryTenant = () =>
  new LandlordError('LANDLORD_FORBIDDEN', 403, 'Forbidden', 'Fleet-wide acts need a principal granted every tenant ("*") with no denial.', {
    required_grant: '*',
  })

export const principalNotFound = (name: string) =>
  new LandlordError('LANDLORD_PRINCIPAL_NOT_FOUND', 404, 'Principal not found', `No principal "${name}".`)

export const principalExists = (name: string) =>
  new LandlordError('LANDLORD_PRINCIPAL_EXISTS', 409, 'Principal exists', `A principal named "${name}" already exists.`)

export const principalProtected = (name: string) =>
  new LandlordError(
    'LANDLORD_PRINCIPAL_PROTECTED',
    409,
    'Principal protected',
    `"${name}" is the bootstrap principal: its key is LANDLORD_ADMIN_KEY, and its scopes, grants and keys cannot be changed here, nor can it be deleted.`,
  )

export const keyNotFound = (id: string) => new LandlordError('LANDLORD_KEY_NOT_FOUND', 404, 'Key not found', `No live key "${id}" for this principal.`)

export const invalidExpiry = () =>
  new LandlordError('LANDLORD_INVALID_EXPIRY', 422, 'Invalid expiry', '`expires_at` must be a valid date in the future.')

export const tenantNotGranted = (ref: string, principal: string) =>
  new LandlordError('LANDLORD_TENANT_NOT_GRANTED', 409, 'Tenant not granted', `Principal "${principal}" may not act on tenant "${ref}"; grant it first.`)

export const wildcardDenial = () =>
  new LandlordError('LANDLORD_INVALID_DENIAL', 400, 'Bad request', 'A denial names one tenant; "*" is for grants.')

export const rateLimited = (retryAfterSeconds: number, max: number) =>
  new LandlordError('LANDLORD_RATE_LIMITED', 429, 'Too many requests', `This API key made more than ${max} requests in the current window; retry in ${retryAfterSeconds} s.`, {
    retry_after: retryAfterSeconds,
  })
