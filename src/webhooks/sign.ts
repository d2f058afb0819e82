// Standard Webhooks signing (https://www.standardwebhooks.com): `webhook-id`
// stable across retries, `webhook-timestamp` in seconds, `webhook-signature`
// `v1,` + HMAC-SHA256 of `id.timestamp.body` under the endpoint's whsec_ secret.
import { randomBytes } from 'node:crypto'
import { Webhook } from 'standardwebhooks'
import { open, seal } from '../secrets/crypto.js'

export function generateSecret(): string {
  return `whsec_${randomBytes(32).toString('base64')}`
}

/** The headers of one attempt; `at` is the attempt's time, so a retry is signed afresh. */
export function signedHeaders(secret: string, id: string, body: string, at = new Date()): Record<string, string> {
  return {
    'webhook-id': id,
    'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
    'webhook-signature': new Webhook(secret).sign(id, at, body),
  }
}

/** Endpoint secrets are stored sealed under the master key, bound to the endpoint id. */
export function sealSecret(masterKey: Buffer, endpointId: string, secret: string): Buffer {
  return seal(masterKey, Buffer.from(secret), `webhook-endpoint:${endpointId}`)
}

export function openSecret(masterKey: Buffer, endpointId: string, sealed: Buffer): string {
  return open(masterKey, sealed, `webhook-endpoint:${endpointId}`).toString()
}
