// The one place that says who may call each route, by operationId: the scope
// it needs, and whether it acts on one tenant (`tenant`: the `:id` parameter
// must be a tenant the principal may see, else 404 as if it did not exist),
// on a webhook delivery (`delivery`: the same, for the delivery's tenant), on
// a webhook endpoint (`endpoint`: a principal that does not see every tenant
// reaches only the endpoints it made, which carry only its tenants' events), or
// on the whole fleet (`everyTenant`: only a principal granted every tenant
// with no denial; managing principals too, as it names tenants and can grant
// them). `null`: any valid key (GET /me). A route missing here
// fails at start: access is denied by default.
import type { Scope } from '../access/scopes.js'

export interface RouteAccess {
  scope: Scope | null
  tenant?: true
  delivery?: true
  /** `:id` is a webhook endpoint: one a principal without every tenant did not make is a 404 to it. */
  endpoint?: true
  everyTenant?: true
}

const tenantRoute = (scope: Scope): RouteAccess => ({ scope, tenant: true })

export const ROUTE_ACCESS: Record<string, RouteAccess> = {
  metrics: { scope: 'tenants:read' },
  getMe: { scope: null },

  createTenant: { scope: 'tenants:write' },
  listTenants: { scope: 'tenants:read' },
  getTenant: tenantRoute('tenants:read'),
  getTenantStatus: tenantRoute('tenants:read'),
  listTenantEvents: tenantRoute('tenants:read'),
  getConnection: tenantRoute('tenants:read'),

  suspendTenant: tenantRoute('lifecycle'),
  resumeTenant: tenantRoute('lifecycle'),
  hibernateTenant: tenantRoute('lifecycle'),
  wakeTenant: tenantRoute('lifecycle'),
  retryTenant: tenantRoute('lifecycle'),

  decommissionTenant: tenantRoute('tenants:delete'),
  restoreTenant: tenantRoute('tenants:delete'),
  placeLegalHold: tenantRoute('tenants:delete'),
  releaseLegalHold: tenantRoute('tenants:delete'),

  issueCredentials: tenantRoute('credentials'),
  rotateCredentials: tenantRoute('credentials'),

  createWebhookEndpoint: { scope: 'webhooks' },
  listWebhookEndpoints: { scope: 'webhooks' },
  getWebhookEndpoint: { scope: 'webhooks', endpoint: true },
  updateWebhookEndpoint: { scope: 'webhooks', endpoint: true },
  deleteWebhookEndpoint: { scope: 'webhooks', endpoint: true },
  listWebhookDeliveries: { scope: 'webhooks', endpoint: true },
  retryWebhookDelivery: { scope: 'webhooks', delivery: true },

  startFleetMigration: { scope: 'migrations', everyTenant: true },
  listFleetMigrations: { scope: 'migrations', everyTenant: true },
  getFleetMigration: { scope: 'migrations', everyTenant: true },
  listFleetMigrationTenants: { scope: 'migrations', everyTenant: true },
  retryFleetMigration: { scope: 'migrations', everyTenant: true },
  cancelFleetMigration: { scope: 'migrations', everyTenant: true },
  getFleetSchema: { scope: 'migrations', everyTenant: true },

  createPrincipal: { scope: 'admin', everyTenant: true },
  listPrincipals: { scope: 'admin', everyTenant: true },
  getPrincipal: { scope: 'admin', everyTenant: true },
  updatePrincipal: { scope: 'admin', everyTenant: true },
  deletePrincipal: { scope: 'admin', everyTenant: true },
  createKey: { scope: 'admin', everyTenant: true },
  listKeys: { scope: 'admin', everyTenant: true },
  revokeKey: { scope: 'admin', everyTenant: true },
  grantTenant: { scope: 'admin', everyTenant: true },
  revokeGrant: { scope: 'admin', everyTenant: true },
  denyTenant: { scope: 'admin', everyTenant: true },
  removeDenial: { scope: 'admin', everyTenant: true },
  getGrants: { scope: 'admin', everyTenant: true },
  setMainTenant: { scope: 'admin', everyTenant: true },
  listAudit: { scope: 'admin' },
}
