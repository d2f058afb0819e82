// Regenerates openapi/openapi.json from the route schemas (npm run openapi).
// The app is composed offline: building it reaches no server, so no database
// or Redis is needed. The configuration is the defaults, not the environment,
// so the document is the same wherever it is generated.
import { randomBytes } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { compose } from '../src/compose.js'
import { loadConfig } from '../src/config.js'

// A throwaway master key: nothing is sealed, and LANDLORD_HOME is left alone.
const config = loadConfig({ LOG_LEVEL: 'silent', LANDLORD_MASTER_KEY: randomBytes(32).toString('base64') })
const landlord = await compose(config, { api: true, workers: false, offline: true })
try {
  await landlord.app!.ready()
  const doc = JSON.stringify(landlord.app!.swagger(), null, 2) + '\n'
  await writeFile(new URL('../openapi/openapi.json', import.meta.url), doc)
} finally {
  await landlord.close()
}
process.stdout.write('openapi/openapi.json written\n')
