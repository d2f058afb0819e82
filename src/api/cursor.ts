// Opaque keyset cursors: the base64url of a sequence number, and back.
import { badRequest } from '../errors.js'

export const encodeCursor = (seq: string | undefined) => (seq === undefined ? null : Buffer.from(seq).toString('base64url'))

export function decodeCursor(cursor: string | undefined): string | undefined {
  if (cursor === undefined) return undefined
  const seq = Buffer.from(cursor, 'base64url').toString()
  if (!/^\d{1,19}$/.test(seq)) throw badRequest('LANDLORD_INVALID_CURSOR', 'The cursor is not one this API returned.')
  return seq
}
