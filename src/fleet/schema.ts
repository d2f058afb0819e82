// The fleet's schema at a glance: tenants per schema version against the
// head of the migrations folder, and the tenants furthest behind.
import { laggards, tenantsPerVersion } from '../db/fleet.js'
import type { Db } from '../db/index.js'
import type { Config } from '../config.js'
import { readFolder } from './runs.js'

export async function fleetSchema(db: Db, config: Config) {
  const migrations = await readFolder(config)
  const head = migrations.at(-1)?.version ?? 0
  const [versions, behind] = await Promise.all([tenantsPerVersion(db), laggards(db, head, 100)])
  return {
    head_version: head,
    tenants: versions.reduce((n, v) => n + v.count, 0),
    versions: versions.map((v) => ({ version: v.version, tenants: v.count })),
    laggards: behind.map((t) => ({ ...t, quarantined_at: t.quarantined_at?.toISOString() ?? null })),
  }
}
