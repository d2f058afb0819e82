// openapi/openapi.json in the repository is what the routes generate.
import { randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import t from 'tap'
import { compose } from '../../src/compose.js'
import { loadConfig } from '../../src/config.js'
import { ROOT } from '../helpers.js'

/** The document as `npm run openapi` generates it: the app composed offline, on the default configuration. */
async function generateOpenApi(): Promise<string> {
  const config = loadConfig({ LOG_LEVEL: 'silent', LANDLORD_MASTER_KEY: randomBytes(32).toString('base64') })
  const landlord = await compose(config, { api: true, workers: false, offline: true })
  try {
    await landlord.app!.ready()
    return JSON.stringify(landlord.app!.swagger(), null, 2) + '\n'
  } finally {
    await landlord.close()
  }
}

t.test('the checked-in OpenAPI document is up to date (run `npm run openapi`)', async (t) => {
  const checkedIn = await readFile(path.join(ROOT, 'openapi', 'openapi.json'), 'utf8')
  const generated = await generateOpenApi()
  t.same(JSON.parse(checkedIn), JSON.parse(generated))
})

t.test('every operation has an id, a tag, a summary and problem responses', async (t) => {
  const doc = JSON.parse(await generateOpenApi())
  for (const [route, methods] of Object.entries(doc.paths as Record<string, Record<string, any>>)) {
    for (const [method, op] of Object.entries(methods)) {
      t.ok(op.operationId, `${method} ${route} has an operationId`)
      t.ok(op.tags?.length, `${method} ${route} has a tag`)
      t.ok(op.summary, `${method} ${route} has a summary`)
      if (!route.startsWith('/healthz') && !route.startsWith('/readyz')) {
        t.ok(op.responses['401'], `${method} ${route} documents 401`)
      }
    }
  }
})

t.test('a parameter with a default is optional: generated clients must not demand it', async (t) => {
  const doc = JSON.parse(await generateOpenApi())
  const defaulted: string[] = []
  for (const [route, methods] of Object.entries(doc.paths as Record<string, Record<string, any>>)) {
    for (const [method, op] of Object.entries(methods)) {
      for (const p of (op.parameters ?? []) as Array<{ name: string; in: string; required?: boolean; schema?: { default?: unknown } }>) {
        if (p.schema?.default === undefined) continue
        defaulted.push(`${method} ${route} ${p.name}`)
        t.notOk(p.required, `${method} ${route}: ${p.in} parameter ${p.name} is not required`)
      }
    }
  }
  // The loop above must have had something to check: the paged lists' limits.
  for (const expected of ['get /tenants limit', 'get /tenants/{id}/events limit', 'get /webhook-endpoints/{id}/deliveries limit']) {
    t.ok(defaulted.includes(expected), `${expected} is documented with its default`)
  }
})
