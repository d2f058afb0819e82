// openapi/openapi.json in the repository is what the routes generate.
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import t from 'tap'
import { generateOpenApi } from '../../src/api/openapi.js'
import { ROOT } from '../helpers.js'

t.test('the checked-in OpenAPI document is up to date (run `npm run openapi`)', async (t) => {
  const checkedIn = await readFile(path.join(ROOT, 'openapi', 'openapi.json'), 'utf8')
  const generated = await generateOpenApi()
  t.same(JSON.parse(checkedIn), JSON.parse(generated))
})

t.test('every operation has an id, a tag and problem responses', async (t) => {
  const doc = JSON.parse(await generateOpenApi())
  for (const [route, methods] of Object.entries(doc.paths as Record<string, Record<string, any>>)) {
    for (const [method, op] of Object.entries(methods)) {
      t.ok(op.operationId, `${method} ${route} has an operationId`)
      t.ok(op.tags?.length, `${method} ${route} has a tag`)
      if (!route.startsWith('/healthz') && !route.startsWith('/readyz')) {
        t.ok(op.responses['401'], `${method} ${route} documents 401`)
      }
    }
  }
})
