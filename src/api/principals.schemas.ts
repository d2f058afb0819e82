// Request and response schemas of the principal, key, grant and /me routes.
import { Type } from '@fastify/type-provider-typebox'
import { SCOPES } from '../access/scopes.js'
import { Nullable } from './tenants.schemas.js'

const L = Type.Literal
export const ScopeSchema = Type.Union([L(SCOPES[0]), L(SCOPES[1]), L(SCOPES[2]), L(SCOPES[3]), L(SCOPES[4]), L(SCOPES[5]), L(SCOPES[6]), L(SCOPES[7])])
const NAME = '^[a-z][a-z0-9_.-]{0,62}$'

export const PrincipalRef = Type.Object({ name: Type.String({ pattern: NAME }) })
export const KeyRef = Type.Object({ name: Type.String({ pattern: NAME }), keyId: Type.String({ minLength: 1, maxLength: 64 }) })
export const GrantRef = Type.Object({
  name: Type.String({ pattern: NAME }),
  tenant: Type.String({ minLength: 1, maxLength: 64, description: 'A tenant id or slug; `*` (grants only) for every tenant' }),
})

export const CreatePrincipalBody = Type.Object(
  {
    name: Type.String({ pattern: NAME, description: 'A person or service: lowercase letters, digits, `_ . -`' }),
    scopes: Type.Array(ScopeSchema, { maxItems: 8, uniqueItems: true }),
    description: Type.Optional(Type.String({ maxLength: 500 })),
  },
  { additionalProperties: false },
)

export const UpdatePrincipalBody = Type.Object(
  { scopes: Type.Optional(Type.Array(ScopeSchema, { maxItems: 8, uniqueItems: true })), description: Type.Optional(Nullable(Type.String({ maxLength: 500 }))) },
  { additionalProperties: false, minProperties: 1 },
)

export const PrincipalResource = Type.Object({
  name: Type.String(),
  scopes: Type.Array(Type.String()),
  all_tenants: Type.Boolean({ description: 'Granted every tenant (`*`), less its denials' }),
  description: Nullable(Type.String()),
  created_at: Type.String({ format: 'date-time' }),
  updated_at: Type.String({ format: 'date-time' }),
})

export const PrincipalList = Type.Object({ items: Type.Array(PrincipalResource) })

export const CreateKeyBody = Type.Object(
  { name: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })), expires_at: Type.Optional(Type.String({ format: 'date-time' })) },
  { additionalProperties: false },
)

export const KeyResource = Type.Object({
  id: Type.String({ format: 'uuid' }),
  name: Nullable(Type.String()),
  bootstrap: Type.Boolean({ description: 'LANDLORD_ADMIN_KEY, or the key generated at the first start' }),
  created_at: Type.String({ format: 'date-time' }),
  expires_at: Nullable(Type.String({ format: 'date-time' })),
  last_used_at: Nullable(Type.String({ format: 'date-time', description: 'Updated at most once a minute' })),
  revoked_at: Nullable(Type.String({ format: 'date-time' })),
})

export const CreatedKey = Type.Object({
  id: Type.String({ format: 'uuid' }),
  name: Nullable(Type.String()),
  expires_at: Nullable(Type.String({ format: 'date-time' })),
  created_at: Type.String({ format: 'date-time' }),
  key: Type.String({ description: 'The key itself (`landlord_…`), shown only in this response' }),
})

export const KeyList = Type.Object({ items: Type.Array(KeyResource) })

const TenantRefOut = Type.Object({ id: Type.String({ format: 'uuid' }), slug: Type.String() })

export const EffectiveAccess = Type.Object({
  principal: Type.String(),
  all_tenants: Type.Boolean(),
  grants: Type.Array(TenantRefOut),
  denials: Type.Array(TenantRefOut, { description: 'Excluded even from a `*` grant: a denial beats a grant' }),
  main_tenant: Nullable(
    Type.Object({
      id: Type.String({ format: 'uuid' }),
      slug: Type.String(),
      state: Type.String(),
      granted: Type.Boolean({ description: 'false: the principal may no longer act on it (a grant was revoked)' }),
    }),
  ),
  main_tenant_lost: Nullable(Type.String({ description: 'Why the main tenant was cleared (it was wiped), until another is set' })),
})

export const MainTenantBody = Type.Object({ tenant: Type.String({ minLength: 1, maxLength: 64 }) }, { additionalProperties: false })

export const Me = Type.Intersect([EffectiveAccess, Type.Object({ key_id: Type.String({ format: 'uuid' }), scopes: Type.Array(Type.String()) })])
