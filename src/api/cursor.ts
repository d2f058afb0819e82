// Opaque keyset cursors: the base64url of a sequence number, and back.
import { invalidCursor } from '../errors.js'

/** Postgres bigint's maximum: a larger number fails the query ("out of range for type bigint"). */
const MAX_SEQ = 9223372036854775807n

export const encodeCursor = (seq: string | undefined) => (seq === undefined ? null : Buffer.from(seq).toString('base64url'))

/** The sequence number in a cursor this API wrote: 1..9223372036854775807, else a 400. */
export function decodeCursor(cursor: string | undefined): string | undefined {
  if (cursor === undefined) return undefined
  const seq = Buffer.from(cursor, 'base64url').toString()
  // Re-encoding must give the cursor back: Buffer skips characters outside base64url instead of refusing them.
  if (!/^[1-9]\d{0,18}$/.test(seq) || BigInt(seq) > MAX_SEQ || encodeCursor(seq) !== cursor) {
    throw invalidCursor()
  }
  return seq
}
