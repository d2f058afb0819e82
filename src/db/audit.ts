// The audit log's one writer and its verifier. Rows are appended under one
// advisory lock, each numbered right after the last (no gaps) and hashed over
// its content and the previous row's hash, in SQL, with the same expression
// the verifier recomputes: sha256(prev_hash || '|' || the row as jsonb text).
import { sql, type Kysely, type Transaction } from 'kysely'
import { visibleTenant, type TenantVisibility } from './index.js'
import type { Database } from './schema.js'

type Conn = Kysely<Database> | Transaction<Database>

export const GENESIS = 'genesis'

export interface AuditEntry {
  principal: string | null
  keyId?: string | null
  tenantId?: string | null
  tenant?: string | null
  action: string
  requestId?: string | null
  route?: string | null
  status?: number | null
  outcome: 'ok' | 'refused' | 'failed'
  source?: string | null
  data?: Record<string, unknown>
}

/** The content a row's hash covers, as Postgres renders it (jsonb text is canonical). */
const CONTENT = sql`jsonb_build_object(
  'seq', seq, 'at', (extract(epoch FROM at) * 1000000)::bigint, 'principal', principal, 'key_id', key_id, 'tenant_id', tenant_id, 'tenant', tenant,
  'action', action, 'request_id', request_id, 'route', route, 'status', status, 'outcome', outcome,
  'source', source, 'data', data)::text`

/** Appends one row; inside `trx` when given, so a transition and its row commit together. */
export async function appendAudit(db: Conn, e: AuditEntry): Promise<void> {
  const write = async (trx: Conn) => {
    await sql`SELECT pg_advisory_xact_lock(hashtext('landlord.audit_log'))`.execute(trx)
    await sql`
      WITH last AS (SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1),
      row AS (
        SELECT coalesce((SELECT seq FROM last), 0) + 1 AS seq, clock_timestamp() AS at,
               ${e.principal}::text AS principal, ${e.keyId ?? null}::uuid AS key_id, ${e.tenantId ?? null}::uuid AS tenant_id,
               coalesce(${e.tenant ?? null}::text, (SELECT slug FROM tenants WHERE id = ${e.tenantId ?? null}::uuid)) AS tenant, ${e.action}::text AS action, ${e.requestId ?? null}::text AS request_id,
               ${e.route ?? null}::text AS route, ${e.status ?? null}::int AS status, ${e.outcome}::text AS outcome,
               ${e.source ?? null}::text AS source, ${JSON.stringify(e.data ?? {})}::jsonb AS data,
               coalesce((SELECT hash FROM last), ${GENESIS}) AS prev_hash)
      INSERT INTO audit_log (seq, at, principal, key_id, tenant_id, tenant, action, request_id, route, status, outcome, source, data, prev_hash, hash)
      SELECT seq, at, principal, key_id, tenant_id, tenant, action, request_id, route, status, outcome, source, data, prev_hash,
             encode(sha256(convert_to(prev_hash || '|' || ${CONTENT}, 'UTF8')), 'hex')
        FROM row`.execute(trx)
  }
  if (db.isTransaction) await write(db)
  else await db.transaction().execute(write)
}

export interface ChainReport {
  rows: number
  /** The first row that does not hold, and why; undefined when the chain is intact. */
  broken?: { seq: number; reason: string }
}

/**
 * Walks the chain in order and names the first row whose hash does not match
 * its content, whose link does not match the row before, or that follows a gap.
 */
export async function verifyAudit(db: Conn): Promise<ChainReport> {
  const count = await sql<{ n: string }>`SELECT count(*) AS n FROM audit_log`.execute(db)
  const bad = await sql<{ seq: string; reason: string }>`
    SELECT seq, CASE
        WHEN seq <> coalesce(prev_seq, 0) + 1 THEN 'a row before it is missing (seq ' || coalesce(prev_seq, 0) + 1 || ')'
        WHEN prev_hash <> coalesce(prev_row_hash, ${GENESIS}) THEN 'its link does not match the row before it'
        ELSE 'its hash does not match its content' END AS reason
      FROM (SELECT seq, hash, prev_hash,
                   lag(seq) OVER w AS prev_seq, lag(hash) OVER w AS prev_row_hash,
                   encode(sha256(convert_to(prev_hash || '|' || ${CONTENT}, 'UTF8')), 'hex') AS expected
              FROM audit_log WINDOW w AS (ORDER BY seq)) x
     WHERE seq <> coalesce(prev_seq, 0) + 1 OR prev_hash <> coalesce(prev_row_hash, ${GENESIS}) OR hash <> expected
     ORDER BY seq LIMIT 1`.execute(db)
  const row = bad.rows[0]
  return { rows: Number(count.rows[0]?.n ?? 0), ...(row ? { broken: { seq: Number(row.seq), reason: row.reason } } : {}) }
}

export interface AuditFilter {
  tenantId?: string
  principal?: string
  limit: number
  /** The seq of the last row of the previous page (newest first). */
  before?: string
  /** Only rows of tenants this principal may see, and rows of no tenant. */
  visible?: TenantVisibility
}

export async function pageAudit(db: Conn, f: AuditFilter) {
  let q = db.selectFrom('audit_log').selectAll().orderBy('seq', 'desc').limit(f.limit + 1)
  if (f.tenantId !== undefined) q = q.where('tenant_id', '=', f.tenantId)
  if (f.principal !== undefined) q = q.where('principal', '=', f.principal)
  if (f.before !== undefined) q = q.where('seq', '<', f.before)
  if (f.visible) q = q.where(visibleTenant('tenant_id', f.visible, true))
  const rows = await q.execute()
  const items = rows.slice(0, f.limit)
  return { items, last: rows.length > f.limit ? items.at(-1)?.seq : undefined }
}
