// Chooses the secrets backend named by SECRETS_BACKEND.
import type pg from 'pg'
import { ConfigError, type Config } from '../config.js'
import type { Db } from '../db/index.js'
import type { Logger } from '../log.js'
import type { SecretsBackend } from './backend.js'
import { LocalSecretsBackend } from './local.js'
import { loadMasterKey } from './master-key.js'

export async function createSecretsBackend(config: Config, deps: { db: Db; cluster: pg.Pool; log: Logger }): Promise<SecretsBackend> {
  if (config.secretsBackend === 'vault') {
    throw new ConfigError('SECRETS_BACKEND', 'the vault backend is not part of this release; use "local"')
  }
  return new LocalSecretsBackend(deps.db, deps.cluster, await loadMasterKey(config, deps.log), deps.log)
}

export type { SecretsBackend }
