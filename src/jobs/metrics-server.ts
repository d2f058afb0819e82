// A worker process has no API: with METRICS_PORT set it serves its own
// /metrics (Prometheus) and /healthz, so workers can be scraped and probed too.
import { createServer, type Server } from 'node:http'
import { registry } from '../metrics.js'

export async function serveWorkerMetrics(host: string, port: number): Promise<Server> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]
    if (req.method === 'GET' && path === '/metrics') {
      registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
        () => res.writeHead(500).end(),
      )
    } else if (req.method === 'GET' && path === '/healthz') {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}')
    } else {
      res.writeHead(404, { 'content-type': 'application/problem+json' }).end('{"title":"Not found","status":404}')
    }
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, resolve)
  })
  return server
}
