// The key-encryption key of the local backend: LANDLORD_MASTER_KEY, or, when
// unset, a key generated once into LANDLORD_HOME/master.key (mode 0600).
import { randomBytes } from 'node:crypto'
import { promises as fs } from 'node:fs'
import path from 'node:path'
import { ConfigError, type Config } from '../config.js'
import type { Db } from '../db/index.js'
import { ensureSetting } from '../db/settings.js'
import { open, seal } from './crypto.js'
import type { Logger } from '../log.js'

export async function loadMasterKey(config: Config, log: Logger): Promise<Buffer> {
  if (config.masterKey) return config.masterKey
  const file = path.resolve(config.home, 'master.key')
  const existing = await fs.readFile(file, 'utf8').catch((err: { code?: string }) => {
    if (err.code === 'ENOENT') return undefined
    throw err
  })
  if (existing !== undefined) return parseKey(file, existing)
  await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 })
  // Written to a private temp file, then linked into place: link() fails if the
  // file exists, so two first starts never write two keys, and a reader never
  // sees a half-written file.
  const temp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}`
  await fs.writeFile(temp, randomBytes(32).toString('base64') + '\n', { flag: 'wx', mode: 0o600 })
  try {
    await fs.link(temp, file)
    log.warn({ file }, 'LANDLORD_MASTER_KEY is unset; generated a master key file. Back it up, or set LANDLORD_MASTER_KEY: without it, stored secrets are unreadable')
  } catch (err) {
    if ((err as { code?: string }).code !== 'EEXIST') throw err
  } finally {
    await fs.unlink(temp)
  }
  return parseKey(file, await fs.readFile(file, 'utf8'))
}

function parseKey(file: string, text: string): Buffer {
  const key = Buffer.from(text.trim(), 'base64')
  if (key.length !== 32) throw new Error(`${file} does not hold a 32-byte base64 key`)
  return key
}

const CHECK = 'master_key_check'

/**
 * The first process to start seals a check value with its master key; every
 * later one must open it. Two processes with different keys would each seal
 * secrets the other cannot read: refuse at start, naming the variable.
 */
export async function verifyMasterKey(db: Db, key: Buffer): Promise<void> {
  const sealed = await ensureSetting(db, CHECK, seal(key, Buffer.from('landlord'), CHECK))
  try {
    open(key, sealed, CHECK)
  } catch {
    throw new ConfigError(
      'LANDLORD_MASTER_KEY',
      'is not the key this control plane was set up with; every process must use the same master key (LANDLORD_MASTER_KEY, or the same LANDLORD_HOME/master.key)',
    )
  }
}
