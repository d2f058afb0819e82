// How busy tenant databases are, as Postgres sees it: client sessions open
// now, and sessions opened since the server started (pg_stat_database.sessions).
// Autovacuum and other background workers are not clients and do not count.
import type pg from 'pg'

export interface DatabaseActivity {
  datname: string
  /** Client sessions open now. */
  clients: number
  /** Sessions ever opened (a bigint, as text). */
  sessions: string
}

export async function databaseActivity(admin: pg.Pool, databases: string[]): Promise<Map<string, DatabaseActivity>> {
  if (databases.length === 0) return new Map()
  const r = await admin.query<DatabaseActivity>(
    `SELECT d.datname, d.sessions::text AS sessions,
            (SELECT count(*) FROM pg_stat_activity a WHERE a.datid = d.datid AND a.backend_type = 'client backend')::int AS clients
       FROM pg_stat_database d WHERE d.datname = ANY($1)`,
    [databases],
  )
  return new Map(r.rows.map((row) => [row.datname, row]))
}
