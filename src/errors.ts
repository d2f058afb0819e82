// Typed domain errors with stable codes. The API turns them into RFC 9457
// problem documents; anything else is a 500 with a generic body.

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

export const badRequest = (code: string, detail: string) => new LandlordError(code, 400, 'Bad request', detail)

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
