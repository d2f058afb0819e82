// Envelope encryption: AES-256-GCM with a random 96-bit IV, stored as
// iv | tag | ciphertext. The associated data binds a ciphertext to its owner
// (a tenant or lease id), so blobs cannot be swapped between rows.
import { createCipheriv, createDecipheriv, createHash, pbkdf2Sync, createHmac, randomBytes } from 'node:crypto'

export function seal(key: Buffer, plaintext: Buffer, aad: string): Buffer {
  const iv = randomBytes(12)
  const cipher = createCipheriv('aes-256-gcm', key, iv)
  cipher.setAAD(Buffer.from(aad))
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()])
  return Buffer.concat([iv, cipher.getAuthTag(), body])
}

export function open(key: Buffer, blob: Buffer, aad: string): Buffer {
  const decipher = createDecipheriv('aes-256-gcm', key, blob.subarray(0, 12))
  decipher.setAAD(Buffer.from(aad))
  decipher.setAuthTag(blob.subarray(12, 28))
  return Buffer.concat([decipher.update(blob.subarray(28)), decipher.final()])
}

/**
 * A SCRAM-SHA-256 verifier in Postgres' format, so the plaintext password never
 * reaches the server (nor its statement log). RFC 5802 / RFC 7677;
 * https://www.postgresql.org/docs/15/catalog-pg-authid.html
 */
export function scramVerifier(password: string, salt = randomBytes(16), iterations = 4096): string {
  // SASLprep (RFC 4013) is the identity on printable ASCII, which is all Landlord
  // generates; anything else would need the full profile to match the server.
  if (!/^[\x20-\x7e]+$/.test(password)) throw new Error('scramVerifier takes printable ASCII passwords only')
  const salted = pbkdf2Sync(password, salt, iterations, 32, 'sha256')
  const clientKey = createHmac('sha256', salted).update('Client Key').digest()
  const storedKey = createHash('sha256').update(clientKey).digest()
  const serverKey = createHmac('sha256', salted).update('Server Key').digest()
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`
}
