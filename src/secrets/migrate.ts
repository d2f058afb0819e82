// Moving from the local backend to Vault: for every tenant not wiped, its
// Vault role and transit key, and its data key unwrapped with the master key
// and wrapped again by the transit key. Idempotent and resumable: a tenant
// done already is counted, not redone.
import type { Db } from '../db/index.js'
import { tenantsNotWiped } from '../db/tenants.js'
import { ConfigError } from '../config.js'
import type { SecretsBackend } from './backend.js'
import { VaultSecretsBackend } from './vault.js'

export interface SecretsMigration {
  total: number
  moved: number
  already: number
  withoutKey: number
}

export async function migrateToVault(
  db: Db,
  secrets: SecretsBackend,
  masterKey: Buffer,
  onProgress: (done: number, total: number, slug: string) => void,
): Promise<SecretsMigration> {
  if (!(secrets instanceof VaultSecretsBackend)) throw new ConfigError('SECRETS_BACKEND', 'must be "vault" to migrate secrets to Vault')
  const tenants = await tenantsNotWiped(db)
  const result: SecretsMigration = { total: tenants.length, moved: 0, already: 0, withoutKey: 0 }
  for (const [i, tenant] of tenants.entries()) {
    const outcome = await secrets.adopt(tenant, masterKey)
    if (outcome === 'moved') result.moved++
    else if (outcome === 'already') result.already++
    else result.withoutKey++
    onProgress(i + 1, tenants.length, tenant.slug)
  }
  return result
}
