// A worker process has no API: with METRICS_PORT set it serves its own
// /metrics (Prometheus) and /healthz, so workers can be scraped and probed too.
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify'
import { registry } from '../metrics.js'

// Buffers, so that Fastify sends the content type as given (it adds a charset to strings).
const HEALTHY = Buffer.from('{"status":"ok"}')
const NOT_FOUND = Buffer.from('{"title":"Not found","status":404}')

function notFound(reply: FastifyReply): FastifyReply {
  return reply.code(404).type('application/problem+json').send(NOT_FOUND)
}

export async function serveWorkerMetrics(host: string, port: number): Promise<FastifyInstance> {
  const app = Fastify({
    // GET only, no implicit HEAD routes: every other method, path or malformed URL is a 404 problem.
    exposeHeadRoutes: false,
    frameworkErrors: (_err, _request, reply) => void notFound(reply),
  })
  // No route takes a body: none is parsed, so none can be refused.
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', (_request, _payload, done) => done(null))

  app.get('/metrics', async (_request, reply) => {
    let text: string
    try {
      text = await registry.metrics()
    } catch {
      return reply.code(500).send()
    }
    return reply.type(registry.contentType).send(text)
  })
  app.get('/healthz', async (_request, reply) => reply.type('application/json').send(HEALTHY))
  app.setNotFoundHandler(async (_request, reply) => notFound(reply))
  await app.listen({ host, port })
  return app
}
