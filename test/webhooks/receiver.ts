// A real HTTP receiver for webhook tests: it verifies every request with the
// `standardwebhooks` package, as a billing system would, and answers with
// whatever the test scripts.
import { createServer, type IncomingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Webhook } from 'standardwebhooks'

export interface Received {
  path: string
  headers: IncomingHttpHeaders
  body: string
  verified: boolean
  json: { type: string; timestamp: string; data: { tenant: { id: string; slug: string; state: string } } }
  status: number
  /** Arrival time, ms since the epoch. */
  at: number
}

export type Responder = (req: Received, nth: number) => { status: number; headers?: Record<string, string>; body?: string; delayMs?: number }

export async function startReceiver() {
  const received: Received[] = []
  const secrets = new Map<string, string>()
  const responders = new Map<string, Responder>()
  const server = createServer((req, res) => {
    let body = ''
    req.on('data', (d: Buffer) => (body += d.toString()))
    req.on('end', () => {
      const path = req.url ?? '/'
      let verified: boolean
      try {
        new Webhook(secrets.get(path) ?? 'whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=').verify(body, req.headers as Record<string, string>)
        verified = true
      } catch {
        verified = false
      }
      const entry = { path, headers: req.headers, body, verified, json: JSON.parse(body || '{}'), status: 0, at: Date.now() }
      const nth = received.filter((r) => r.path === path).length
      const respond: Responder = responders.get(path) ?? (() => ({ status: 204 }))
      const answer = respond(entry, nth)
      entry.status = answer.status
      received.push(entry)
      setTimeout(() => {
        res.writeHead(answer.status, answer.headers)
        res.end(answer.body ?? '')
      }, answer.delayMs ?? 0)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  return {
    received,
    url: (path: string) => `http://127.0.0.1:${port}${path}`,
    /** The secret the endpoint at `path` signs with, so requests can be verified. */
    trust: (path: string, secret: string) => secrets.set(path, secret),
    respond: (path: string, responder: Responder) => responders.set(path, responder),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }
}
