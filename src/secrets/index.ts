// Chooses the secrets backend named by SECRETS_BACKEND.
import type pg from 'pg'
import type { Config } from '../config.js'
import type { Db } from '../db/index.js'
import type { Logger } from '../log.js'
import type { SecretsBackend } from './backend.js'
import { LocalSecretsBackend } from './local.js'
import { VaultSecretsBackend } from './vault.js'

export function createSecretsBackend(config: Config, deps: { db: Db; cluster: pg.Pool; log: Logger; masterKey: Buffer }): SecretsBackend {
  switch (config.secretsBackend) {
    case 'local':
      return new LocalSecretsBackend(deps.db, deps.cluster, deps.masterKey, deps.log)
    case 'vault':
      return new VaultSecretsBackend(config, deps.db, deps.cluster, deps.log)
  }
}

export type { SecretsBackend }
