// The fake Vault's database secrets engine: connections, roles and dynamic
// credentials whose statements the PostgreSQL plugin (fake-vault-pg.ts) runs
// against the real Postgres, so issued logins work and revoked ones are gone
// (builtin/logical/database/path_config_connection.go, path_roles.go,
// path_creds_create.go, secret_creds.go).
import type { Lease, LeaseBackend, LeaseManager } from './fake-vault-leases.js'
import type { Route, VaultRequest } from './fake-vault-route.js'
import { PostgresPlugin, pgMessage, urlPassword } from './fake-vault-pg.js'
import { DEFAULT_USERNAME_TEMPLATE, renderUsername } from './fake-vault-template.js'
import {
  NAME,
  asBool,
  asCommaSlice,
  asStringSlice,
  badRequest,
  calculateTtl,
  defaultPassword,
  globMatch,
  internalError,
  nil,
  parseDurationSecond,
  respond,
  vaultExpiration,
  type Outcome,
  type SystemTtl,
} from './fake-vault-util.js'

export interface DbConnection {
  pluginName: string
  /** Everything else the write carried: connection_url, username, password... */
  details: Record<string, unknown>
  allowedRoles: string[]
  verifyConnection: boolean
  plugin: PostgresPlugin
}

export interface DbRole {
  dbName: string
  creation: string[]
  revocation: string[]
  rollback: string[]
  renewal: string[]
  defaultTtl: number
  maxTtl: number
}

const PLUGIN = 'postgresql-database-plugin'
const usernameTemplate = (details: Record<string, unknown>) =>
  typeof details.username_template === 'string' && details.username_template !== '' ? details.username_template : DEFAULT_USERNAME_TEMPLATE
const CONFIG_FIELDS = ['name', 'plugin_name', 'plugin_version', 'verify_connection', 'allowed_roles', 'root_rotation_statements', 'password_policy']

interface DbNamespace {
  configs: Map<string, DbConnection>
  roles: Map<string, DbRole>
}

export class DatabaseEngine implements LeaseBackend {
  private readonly spaces = new Map<string, DbNamespace>()
  /** SQL statements sent to Postgres, all connections together. */
  readonly counter = { statementsRun: 0 }
  readonly usernames: string[] = []

  constructor(
    readonly mount: string,
    private readonly sys: SystemTtl,
    private readonly now: () => number,
    private readonly leases: LeaseManager,
  ) {}

  space(namespace: string): DbNamespace {
    let space = this.spaces.get(namespace)
    if (!space) this.spaces.set(namespace, (space = { configs: new Map(), roles: new Map() }))
    return space
  }

  namespaces(): string[] {
    return [...this.spaces.keys()]
  }

  routes(): Route[] {
    const m = this.mount.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
    const name = (req: VaultRequest) => req.params.name ?? ''
    const list = (keys: string[]): Outcome => (keys.length === 0 ? nil : respond({ data: { keys: keys.sort() } }))
    return [
      {
        pattern: new RegExp(`^${m}/config/?$`),
        mountType: 'database',
        handlers: { list: (req) => list([...this.space(req.namespace).configs.keys()]) },
      },
      {
        pattern: new RegExp(`^${m}/config/(?<name>${NAME})$`),
        mountType: 'database',
        exists: (req) => this.space(req.namespace).configs.has(name(req)),
        handlers: {
          create: (req) => this.writeConfig(req),
          update: (req) => this.writeConfig(req),
          read: (req) => this.readConfig(req),
          delete: (req) => this.deleteConfig(req),
        },
      },
      {
        pattern: new RegExp(`^${m}/roles/?$`),
        mountType: 'database',
        handlers: { list: (req) => list([...this.space(req.namespace).roles.keys()]) },
      },
      {
        pattern: new RegExp(`^${m}/roles/(?<name>${NAME})$`),
        mountType: 'database',
        exists: (req) => this.space(req.namespace).roles.has(name(req)),
        fields: ['name', 'db_name', 'creation_statements', 'revocation_statements', 'rollback_statements', 'renew_statements', 'default_ttl', 'max_ttl', 'credential_type', 'credential_config'],
        handlers: {
          create: (req) => this.writeRole(req),
          update: (req) => this.writeRole(req),
          read: (req) => this.readRole(req),
          delete: (req) => (this.space(req.namespace).roles.delete(name(req)), nil),
        },
      },
      {
        pattern: new RegExp(`^${m}/creds/(?<name>${NAME})$`),
        mountType: 'database',
        fields: ['name'],
        handlers: { read: (req) => this.issue(req) },
      },
    ]
  }

  private async writeConfig(req: VaultRequest): Promise<Outcome> {
    const name = req.params.name ?? ''
    const space = this.space(req.namespace)
    const old = space.configs.get(name)
    const create = req.op === 'create'
    const pluginName = typeof req.data.plugin_name === 'string' ? req.data.plugin_name : create ? '' : (old?.pluginName ?? '')
    if (pluginName === '') return badRequest('empty plugin name')
    const verify = req.data.verify_connection === undefined ? (old?.verifyConnection ?? true) : asBool(req.data.verify_connection)
    const allowedRoles = req.data.allowed_roles === undefined ? (create ? [] : (old?.allowedRoles ?? [])) : asCommaSlice(req.data.allowed_roles)
    if (verify === undefined || allowedRoles === undefined) return badRequest('error converting input for field "verify_connection" or "allowed_roles"')
    const given = Object.fromEntries(Object.entries(req.data).filter(([k]) => !CONFIG_FIELDS.includes(k)))
    // An update merges the new connection details over the stored ones.
    const details = create ? given : { ...(old?.details ?? {}), ...given }
    if (pluginName !== PLUGIN) return badRequest(`error creating database object: plugin ${pluginName} is not served by the fake Vault (only ${PLUGIN})`)
    if (typeof details.connection_url !== 'string' || details.connection_url === '') {
      return badRequest('error creating database object: connection_url cannot be empty')
    }
    try {
      renderUsername(usernameTemplate(details), { DisplayName: '', RoleName: '' })
    } catch (err) {
      return badRequest(`error creating database object: invalid username template: ${(err as Error).message}`)
    }
    const config: DbConnection = { pluginName, details, allowedRoles, verifyConnection: verify, plugin: new PostgresPlugin(details, this.counter) }
    if (verify) {
      try {
        await config.plugin.verify()
      } catch (err) {
        await config.plugin.close()
        return badRequest(`error creating database object: error verifying connection: ${(err as Error).message}`)
      }
    }
    await old?.plugin.close()
    space.configs.set(name, config)
    if (urlPassword(details.connection_url) !== '') {
      return respond({ warnings: ['Password found in connection_url, use a templated url to enable root rotation and prevent read access to password information.'] })
    }
    return nil
  }

  private readConfig(req: VaultRequest): Outcome {
    const config = this.space(req.namespace).configs.get(req.params.name ?? '')
    if (!config) return nil
    const { password: _password, private_key: _key, ...details } = config.details
    return respond({
      data: {
        plugin_name: config.pluginName,
        plugin_version: '',
        connection_details: details,
        allowed_roles: config.allowedRoles,
        root_credentials_rotate_statements: [],
        password_policy: '',
        verify_connection: config.verifyConnection,
        skip_static_role_import_rotation: false,
      },
    })
  }

  private async deleteConfig(req: VaultRequest): Promise<Outcome> {
    const space = this.space(req.namespace)
    const name = req.params.name ?? ''
    await space.configs.get(name)?.plugin.close()
    space.configs.delete(name)
    return nil
  }

  private writeRole(req: VaultRequest): Outcome {
    const name = req.params.name ?? ''
    const old = this.space(req.namespace).roles.get(name)
    const base: DbRole = req.op === 'create' || !old ? { dbName: '', creation: [], revocation: [], rollback: [], renewal: [], defaultTtl: 0, maxTtl: 0 } : { ...old }
    const d = req.data
    if (d.db_name !== undefined) base.dbName = typeof d.db_name === 'string' ? d.db_name : JSON.stringify(d.db_name)
    if (base.dbName === '') return badRequest('database name is required')
    const lists = { creation: 'creation_statements', revocation: 'revocation_statements', rollback: 'rollback_statements', renewal: 'renew_statements' } as const
    for (const [key, field] of Object.entries(lists) as [keyof typeof lists, string][]) {
      if (d[field] === undefined) continue
      const value = asStringSlice(d[field])
      if (value === undefined) return badRequest(`error converting input for field "${field}"`)
      base[key] = value
    }
    base.revocation = base.revocation.filter((s) => s !== '')
    for (const [key, field] of [['defaultTtl', 'default_ttl'], ['maxTtl', 'max_ttl']] as const) {
      if (d[field] === undefined) continue
      const value = parseDurationSecond(d[field])
      if (value === undefined) return badRequest(`error converting input ${JSON.stringify(d[field])} for field "${field}"`)
      base[key] = value
    }
    if (base.maxTtl !== 0 && base.maxTtl < base.defaultTtl) return badRequest('ttl cannot be greater than max_ttl')
    this.space(req.namespace).roles.set(name, base)
    return nil
  }

  private readRole(req: VaultRequest): Outcome {
    const role = this.space(req.namespace).roles.get(req.params.name ?? '')
    if (!role) return nil
    return respond({
      data: {
        db_name: role.dbName,
        creation_statements: role.creation,
        revocation_statements: role.revocation,
        rollback_statements: role.rollback,
        renew_statements: role.renewal,
        default_ttl: role.defaultTtl,
        max_ttl: role.maxTtl,
        credential_type: 'password',
      },
    })
  }

  /** pathCredsCreateRead, then the core's lease registration. */
  private async issue(req: VaultRequest): Promise<Outcome> {
    const roleName = req.params.name ?? ''
    const space = this.space(req.namespace)
    const role = space.roles.get(roleName)
    if (!role) return badRequest(`unknown role: ${roleName}`)
    const config = space.configs.get(role.dbName)
    if (!config) return internalError(`failed to find entry for connection with name: "${role.dbName}"`)
    // Plain errors in Vault, so 500s, though they are the caller's doing.
    if (!config.allowedRoles.includes('*') && !config.allowedRoles.some((glob) => globMatch(glob, roleName))) {
      return internalError(`"${roleName}" is not an allowed role`)
    }
    const ttl = calculateTtl(this.sys, { increment: 0, backendTtl: role.defaultTtl, backendMaxTtl: role.maxTtl, nowMs: this.now() })
    if ('error' in ttl) return internalError(ttl.error)
    if (role.creation.length === 0) return internalError('empty creation statements')
    // The token's display name ("root", "approle") and the role name, through username_template.
    const username = renderUsername(usernameTemplate(config.details), { DisplayName: req.token.displayName, RoleName: roleName })
    const password = defaultPassword()
    // Five seconds past the lease, so the login outlives the lease it belongs to.
    const expiration = vaultExpiration(new Date(this.now() + ttl.ttl * 1000 + 5000))
    try {
      await config.plugin.newUser(role.creation, { name: username, password, expiration })
    } catch (err) {
      return internalError(`failed to execute query: ${pgMessage(err)}`)
    }
    this.usernames.push(username)
    const lease = this.leases.register(req, ttl.ttl, { username, role: roleName, dbName: role.dbName, revocationStatements: role.revocation })
    return respond({ secret: { leaseId: lease.id, leaseDuration: ttl.ttl, renewable: true }, data: { username, password }, warnings: ttl.warnings })
  }

  /** secretCredsRenew: the role's TTLs, and VALID UNTIL moved with the lease. */
  async renew(lease: Lease, increment: number): Promise<{ backendTtl: number; backendMaxTtl: number } | { error: string }> {
    const space = this.space(lease.namespace)
    const role = space.roles.get(lease.internal.role)
    if (!role) return { error: `error during renew: could not find role with name "${lease.internal.role}"` }
    const config = space.configs.get(role.dbName)
    if (!config) return { error: `failed to find entry for connection with name: "${role.dbName}"` }
    const ttl = calculateTtl(this.sys, { increment, backendTtl: role.defaultTtl, backendMaxTtl: role.maxTtl, startMs: lease.issueMs, nowMs: this.now() })
    if ('error' in ttl) return ttl
    const expiration = vaultExpiration(new Date(this.now() + ttl.ttl * 1000 + 5000))
    try {
      await config.plugin.renewUser(role.renewal, lease.internal.username, expiration)
    } catch (err) {
      return { error: pgMessage(err) }
    }
    return { backendTtl: role.defaultTtl, backendMaxTtl: role.maxTtl }
  }

  /** secretCredsRevoke: the role's revocation statements, or those kept with the lease if the role is gone. */
  async revoke(lease: Lease): Promise<void> {
    const space = this.space(lease.namespace)
    const role = space.roles.get(lease.internal.role)
    const dbName = role?.dbName ?? lease.internal.dbName
    const config = space.configs.get(dbName)
    if (!config) throw new Error(`failed to find entry for connection with name: "${dbName}"`)
    await config.plugin.deleteUser(role ? role.revocation : lease.internal.revocationStatements, lease.internal.username)
  }

  async close(): Promise<void> {
    const configs = [...this.spaces.values()].flatMap((s) => [...s.configs.values()])
    await Promise.all(configs.map((c) => c.plugin.close()))
  }
}
