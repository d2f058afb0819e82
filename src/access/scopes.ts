// What a principal may do: one scope per kind of act. `admin` (principals,
// keys, grants, audit) also passes every other scope check; grants still
// decide which tenants.
export const SCOPES = ['tenants:read', 'tenants:write', 'lifecycle', 'tenants:delete', 'credentials', 'migrations', 'webhooks', 'admin'] as const
export type Scope = (typeof SCOPES)[number]

export function isScope(s: string): s is Scope {
  return (SCOPES as readonly string[]).includes(s)
}
