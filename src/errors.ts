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
