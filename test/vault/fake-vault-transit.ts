// The fake Vault's transit engine: named keys with real AES-GCM (or
// ChaCha20-Poly1305) material kept in memory, ciphertexts in Vault's
// "vault:v<version>:<base64(nonce|ciphertext|tag)>" form, and the deletion_allowed
// guard (builtin/logical/transit/path_keys.go, path_keys_config.go,
// path_encrypt.go, path_decrypt.go; sdk/helper/keysutil).
import { createCipheriv, createDecipheriv, randomBytes, type CipherGCMTypes } from 'node:crypto'
import type { Route, VaultRequest } from './fake-vault-route.js'
import { NAME, asBool, badRequest, decodeStdBase64, nil, respond, type Outcome } from './fake-vault-util.js'

export interface TransitKey {
  name: string
  type: string
  versions: Map<number, { key: Buffer; created: number }>
  latestVersion: number
  minDecryptionVersion: number
  minEncryptionVersion: number
  deletionAllowed: boolean
  exportable: boolean
  allowPlaintextBackup: boolean
}

// The symmetric types the fake encrypts with; Vault's asymmetric ones are not simulated.
const CIPHERS: Record<string, { cipher: CipherGCMTypes | 'chacha20-poly1305'; bytes: number }> = {
  'aes256-gcm96': { cipher: 'aes-256-gcm', bytes: 32 },
  'aes128-gcm96': { cipher: 'aes-128-gcm', bytes: 16 },
  'chacha20-poly1305': { cipher: 'chacha20-poly1305', bytes: 32 },
}
const VAULT_TYPES = ['ecdsa-p256', 'ecdsa-p384', 'ecdsa-p521', 'ed25519', 'rsa-2048', 'rsa-3072', 'rsa-4096', 'hmac', 'managed_key', 'aes128-cmac', 'aes256-cmac']

export class TransitEngine {
  private readonly spaces = new Map<string, Map<string, TransitKey>>()

  constructor(
    readonly mount: string,
    private readonly now: () => number,
  ) {}

  keys(namespace: string): Map<string, TransitKey> {
    let keys = this.spaces.get(namespace)
    if (!keys) this.spaces.set(namespace, (keys = new Map()))
    return keys
  }

  namespaces(): string[] {
    return [...this.spaces.keys()]
  }

  routes(): Route[] {
    const m = this.mount.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
    const key = (req: VaultRequest) => this.keys(req.namespace).get(req.params.name ?? '')
    return [
      {
        pattern: new RegExp(`^${m}/keys/?$`),
        mountType: 'transit',
        handlers: { list: (req) => (this.keys(req.namespace).size === 0 ? nil : respond({ data: { keys: [...this.keys(req.namespace).keys()].sort() } })) },
      },
      {
        pattern: new RegExp(`^${m}/keys/(?<name>${NAME})$`),
        mountType: 'transit',
        fields: ['name', 'type', 'derived', 'convergent_encryption', 'exportable', 'allow_plaintext_backup', 'context', 'auto_rotate_period', 'key_size'],
        handlers: {
          update: (req) => this.create(req),
          read: (req) => {
            const k = key(req)
            return k ? respond({ data: describe(k) }) : nil
          },
          delete: (req) => this.delete(req),
        },
      },
      {
        pattern: new RegExp(`^${m}/keys/(?<name>${NAME})/config$`),
        mountType: 'transit',
        fields: ['name', 'min_decryption_version', 'min_encryption_version', 'deletion_allowed', 'exportable', 'allow_plaintext_backup', 'auto_rotate_period'],
        handlers: { update: (req) => this.configure(req) },
      },
      {
        pattern: new RegExp(`^${m}/encrypt/(?<name>${NAME})$`),
        mountType: 'transit',
        exists: (req) => key(req) !== undefined,
        fields: ['name', 'plaintext', 'context', 'nonce', 'type', 'convergent_encryption', 'key_version'],
        handlers: { create: (req) => this.encrypt(req), update: (req) => this.encrypt(req) },
      },
      {
        pattern: new RegExp(`^${m}/decrypt/(?<name>${NAME})$`),
        mountType: 'transit',
        fields: ['name', 'ciphertext', 'context', 'nonce'],
        handlers: { update: (req) => this.decrypt(req) },
      },
    ]
  }

  private newKey(name: string, type: string, d: Record<string, unknown>): TransitKey {
    const spec = CIPHERS[type]!
    return {
      name,
      type,
      versions: new Map([[1, { key: randomBytes(spec.bytes), created: Math.floor(this.now() / 1000) }]]),
      latestVersion: 1,
      minDecryptionVersion: 1,
      minEncryptionVersion: 0,
      deletionAllowed: false,
      exportable: asBool(d.exportable) === true,
      allowPlaintextBackup: asBool(d.allow_plaintext_backup) === true,
    }
  }

  /** pathPolicyWrite: an upsert; writing an existing key only warns. */
  private create(req: VaultRequest): Outcome {
    const name = req.params.name ?? ''
    const type = typeof req.data.type === 'string' && req.data.type !== '' ? req.data.type : 'aes256-gcm96'
    if (!CIPHERS[type]) {
      if (VAULT_TYPES.includes(type)) return badRequest(`key type ${type} is not simulated by the fake Vault`)
      return badRequest(`unknown key type ${type}`)
    }
    if (asBool(req.data.convergent_encryption) === true && asBool(req.data.derived) !== true) {
      return badRequest('convergent encryption requires derivation to be enabled')
    }
    const keys = this.keys(req.namespace)
    const existing = keys.get(name)
    const k = existing ?? this.newKey(name, type, req.data)
    keys.set(name, k)
    return respond({ data: describe(k), warnings: existing ? [`key ${name} already existed`] : [] })
  }

  /** pathPolicyDelete: refused until deletion_allowed is set. */
  private delete(req: VaultRequest): Outcome {
    const name = req.params.name ?? ''
    const keys = this.keys(req.namespace)
    const k = keys.get(name)
    if (!k) return badRequest(`error deleting policy ${name}: could not delete key; not found`)
    if (!k.deletionAllowed) return badRequest(`error deleting policy ${name}: deletion is not allowed for this key`)
    keys.delete(name)
    return nil
  }

  /** pathKeysConfigWrite, for the fields a single-version key has. */
  private configure(req: VaultRequest): Outcome {
    const name = req.params.name ?? ''
    const k = this.keys(req.namespace).get(name)
    if (!k) return badRequest(`no existing key named ${name} could be found`)
    const d = req.data
    const warnings: string[] = []
    if (d.min_decryption_version !== undefined) {
      let v = Number(d.min_decryption_version)
      if (v < 0) return badRequest('min decryption version cannot be negative')
      if (v === 0) {
        v = 1
        warnings.push('since Vault 0.3, transit key numbering starts at 1; forcing minimum to 1')
      }
      if (v > k.latestVersion) return badRequest(`cannot set min decryption version of ${v}, latest key version is ${k.latestVersion}`)
      k.minDecryptionVersion = v
    }
    if (d.deletion_allowed !== undefined) k.deletionAllowed = asBool(d.deletion_allowed) === true
    // exportable and allow_plaintext_backup can be turned on, never off.
    if (asBool(d.exportable) === true) k.exportable = true
    if (asBool(d.allow_plaintext_backup) === true) k.allowPlaintextBackup = true
    return respond({ data: describe(k), warnings })
  }

  private encrypt(req: VaultRequest): Outcome {
    const name = req.params.name ?? ''
    if (typeof req.data.plaintext !== 'string') return badRequest('missing plaintext to encrypt')
    const plain = decodeStdBase64(req.data.plaintext)
    if ('error' in plain) return badRequest(plain.error)
    const keys = this.keys(req.namespace)
    let k = keys.get(name)
    let warnings: string[] = []
    if (req.op === 'create') {
      // The existence check made this a create: the key is upserted with the requested type.
      const type = typeof req.data.type === 'string' && req.data.type !== '' ? req.data.type : 'aes256-gcm96'
      if (!CIPHERS[type]) return badRequest(`unknown key type ${type}`)
      if (k) warnings = ['Attempted creation of the key during the encrypt operation, but it was created beforehand']
      else keys.set(name, (k = this.newKey(name, type, {})))
    }
    if (!k) return badRequest('encryption key not found')
    const version = Number(req.data.key_version ?? 0) || k.latestVersion
    const material = k.versions.get(version)
    if (!material || version < k.minEncryptionVersion) return badRequest('requested version for encryption is less than the minimum encryption key version')
    const nonce = randomBytes(12)
    const cipher = createCipheriv(CIPHERS[k.type]!.cipher as CipherGCMTypes, material.key, nonce, { authTagLength: 16 })
    const sealed = Buffer.concat([nonce, cipher.update(plain), cipher.final(), cipher.getAuthTag()])
    return respond({ data: { ciphertext: `vault:v${version}:${sealed.toString('base64')}`, key_version: version }, warnings })
  }

  /** keysutil Policy.Decrypt's checks and messages. */
  private decrypt(req: VaultRequest): Outcome {
    const k = this.keys(req.namespace).get(req.params.name ?? '')
    if (typeof req.data.ciphertext !== 'string' || req.data.ciphertext === '') return badRequest('missing ciphertext to decrypt')
    if (!k) return badRequest('encryption key not found')
    const value = req.data.ciphertext
    if (!value.startsWith('vault:v')) return badRequest('invalid ciphertext: no prefix')
    const rest = value.slice('vault:v'.length)
    const colon = rest.indexOf(':')
    if (colon < 0) return badRequest('invalid ciphertext: wrong number of fields')
    const version = Number(rest.slice(0, colon))
    if (!Number.isInteger(version)) return badRequest('invalid ciphertext: version number could not be decoded')
    if (version < k.minDecryptionVersion) return badRequest('ciphertext or signature version is disallowed by policy (too old)')
    const material = k.versions.get(version)
    if (!material || version > k.latestVersion) return badRequest('invalid ciphertext: version is too new')
    const decoded = decodeStdBase64(rest.slice(colon + 1))
    if ('error' in decoded) return badRequest('invalid ciphertext: could not decode base64')
    if (decoded.length < 12 + 16) return badRequest('invalid ciphertext length')
    try {
      const decipher = createDecipheriv(CIPHERS[k.type]!.cipher as CipherGCMTypes, material.key, decoded.subarray(0, 12), { authTagLength: 16 })
      decipher.setAuthTag(decoded.subarray(decoded.length - 16))
      const plain = Buffer.concat([decipher.update(decoded.subarray(12, decoded.length - 16)), decipher.final()])
      return respond({ data: { plaintext: plain.toString('base64') } })
    } catch {
      return badRequest('invalid ciphertext: unable to decrypt')
    }
  }
}

/** formatKeyPolicy: the fields a key read (and a create or config write) answers. */
function describe(k: TransitKey): Record<string, unknown> {
  return {
    name: k.name,
    type: k.type,
    derived: false,
    deletion_allowed: k.deletionAllowed,
    min_available_version: 0,
    min_decryption_version: k.minDecryptionVersion,
    min_encryption_version: k.minEncryptionVersion,
    latest_version: k.latestVersion,
    exportable: k.exportable,
    allow_plaintext_backup: k.allowPlaintextBackup,
    supports_encryption: true,
    supports_decryption: true,
    supports_signing: false,
    supports_derivation: true,
    auto_rotate_period: 0,
    imported_key: false,
    keys: Object.fromEntries([...k.versions].map(([v, m]) => [String(v), m.created])),
  }
}
