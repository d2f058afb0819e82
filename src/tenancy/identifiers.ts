// Names of tenant databases and roles, and the one way identifiers reach SQL.
import pg from 'pg'

export const SLUG_PATTERN = '^[a-z][a-z0-9_]{2,29}$'
const SLUG = new RegExp(SLUG_PATTERN)

/**
 * Slugs that would read as system objects or confuse operators. Postgres
 * reserves `pg_`; the rest are names a control plane should never hand out.
 */
const RESERVED = new Set([
  'admin', 'administrator', 'all', 'api', 'default', 'landlord', 'me', 'null', 'postgres', 'public',
  'replication', 'root', 'superuser', 'system', 'template', 'template0', 'template1', 'tenant', 'tenants',
])

export function slugProblem(slug: string): string | undefined {
  if (!SLUG.test(slug)) return `must match ${SLUG_PATTERN}`
  if (RESERVED.has(slug) || slug.startsWith('pg_')) return `"${slug}" is reserved`
  return undefined
}

/** Double-quotes an identifier; values always go as parameters instead. */
export function quoteIdent(name: string): string {
  if (Buffer.byteLength(name) > 63) throw new Error(`identifier longer than 63 bytes: ${name}`)
  return pg.escapeIdentifier(name)
}

export interface TenantNames {
  /** The tenant's database, `${prefix}${slug}`. */
  database: string
  /** NOLOGIN role that owns the database and every object in it. */
  owner: string
}

export function tenantNames(prefix: string, slug: string): TenantNames {
  const base = `${prefix}${slug}`
  return { database: base, owner: base }
}

/**
 * Every owner role carries a comment naming its tenant's id. Names alone can
 * collide (two instances on one cluster whose prefixes overlap, an old backup
 * of the registry): the marker is what proves a role, and the databases it
 * owns, belong to this tenant.
 */
export const tenantMarker = (tenantId: string) => `landlord tenant ${tenantId}`

export class NotOursError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'NotOursError'
  }
}
