// Bounds on a tenant's free-form metadata. It is stored as jsonb, copied into
// every webhook payload and serialized with the recursive JSON.stringify, so
// its depth is checked first, without recursion, and its size after.
import { invalidMetadata } from '../errors.js'
import { flawError, inspectJson } from './json-inspect.js'

/** Levels of objects and arrays, the metadata object itself being the first. */
export const METADATA_MAX_DEPTH = 8
/** Bytes of its JSON (UTF-8). */
export const METADATA_MAX_BYTES = 16 * 1024

/** Throws a 400 problem when `metadata` is beyond the bounds or holds text Postgres cannot store. */
export function assertMetadata(metadata: unknown): void {
  if (metadata === undefined) return
  const flaw = inspectJson(metadata, 'body.metadata', METADATA_MAX_DEPTH)
  if (flaw?.kind === 'depth') throw invalidMetadata(`is nested more than ${METADATA_MAX_DEPTH} levels deep (at ${flaw.path})`)
  if (flaw) throw flawError(flaw, METADATA_MAX_DEPTH)
  const bytes = Buffer.byteLength(JSON.stringify(metadata))
  if (bytes > METADATA_MAX_BYTES) throw invalidMetadata(`is ${bytes} bytes as JSON; at most ${METADATA_MAX_BYTES} are kept`)
}
