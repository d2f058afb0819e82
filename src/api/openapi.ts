// The OpenAPI document as the routes describe it, built without any connection.
import { loadConfig } from '../config.js'
import type { Db } from '../db/index.js'
import { createLogger } from '../log.js'
import { buildApp } from './app.js'

export async function generateOpenApi(): Promise<string> {
  const app = await buildApp({
    config: loadConfig({}),
    db: {} as Db, // never queried: no request is served
    redis: {} as never,
    cluster: {} as never,
    secrets: {} as never,
    masterKey: Buffer.alloc(32),
    log: createLogger('silent'),
  })
  await app.ready()
  const doc = JSON.stringify(app.swagger(), null, 2) + '\n'
  await app.close()
  return doc
}
