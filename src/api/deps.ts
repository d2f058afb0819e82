// What the API is handed by its caller (compose.ts, for every process, test and script): apart from
// app.ts, so the route plugins can name it without importing the app factory.
import type { Redis } from 'ioredis'
import type pg from 'pg'
import type { Config } from '../config.js'
import type { Db } from '../db/index.js'
import type { Logger } from '../log.js'
import type { SecretsBackend } from '../secrets/backend.js'

export interface ApiDeps {
  config: Config
  db: Db
  /** A fail-fast Redis connection (readiness). */
  redis: Redis
  /** Admin pool on the tenant cluster (credentials). */
  cluster: pg.Pool
  secrets: SecretsBackend
  /** Seals webhook endpoint secrets. */
  masterKey: Buffer
  log: Logger
}
