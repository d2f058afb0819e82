// The PostgreSQL error codes Landlord acts on, in one table.
// https://www.postgresql.org/docs/15/errcodes-appendix.html

export const SQLSTATE = {
  uniqueViolation: '23505',
  insufficientPrivilege: '42501',
  duplicateObject: '42710',
  duplicateDatabase: '42P04',
  undefinedObject: '42704',
  invalidCatalogName: '3D000',
  dependentObjectsStillExist: '2BP01',
  lockNotAvailable: '55P03',
} as const

/**
 * Error classes worth a retry: a lost connection (08), insufficient
 * resources (53), an operator intervention such as a shutdown (57).
 */
const TRANSIENT_CLASSES = ['08', '53', '57']

/** The SQLSTATE of a pg error, or undefined for anything else. */
export function sqlState(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined
}

/** Whether `err` carries one of `codes`. */
export function hasSqlState(err: unknown, ...codes: string[]): boolean {
  const code = sqlState(err)
  return code !== undefined && codes.includes(code)
}

/** A server-side error that may go away on its own: a retry may succeed. */
export function isTransientSqlError(err: unknown): boolean {
  const code = sqlState(err)
  return code !== undefined && (TRANSIENT_CLASSES.includes(code.slice(0, 2)) || code === SQLSTATE.lockNotAvailable)
}
