// Regenerates openapi/openapi.json from the route schemas (npm run openapi).
import { writeFile } from 'node:fs/promises'
import { generateOpenApi } from '../src/api/openapi.js'

await writeFile(new URL('../openapi/openapi.json', import.meta.url), await generateOpenApi())
process.stdout.write('openapi/openapi.json written\n')
