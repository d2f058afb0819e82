// The local backend's master key: LANDLORD_MASTER_KEY when set, otherwise a
// key generated once into LANDLORD_HOME/master.key and read back after.
import { randomBytes } from 'node:crypto'
import { promises as fs } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import t, { type Test } from 'tap'
import { ConfigError, loadConfig } from '../../src/config.js'
import { createLogger } from '../../src/log.js'
import { loadMasterKey, verifyMasterKey } from '../../src/secrets/master-key.js'
import { setup } from '../helpers.js'

const log = createLogger('silent')

async function tempHome(t: Test): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'landlord-home-'))
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }))
  return dir
}

async function exists(file: string): Promise<boolean> {
  return fs.stat(file).then(
    () => true,
    () => false,
  )
}

t.test('without LANDLORD_MASTER_KEY, a key is generated into <home>/master.key, readable by its owner only', async (t) => {
  const dir = await tempHome(t)
  const key = await loadMasterKey(loadConfig({ LANDLORD_HOME: dir }), log)
  t.equal(key.length, 32)
  const file = path.join(dir, 'master.key')
  const stat = await fs.stat(file)
  t.equal(stat.mode & 0o777, 0o600, 'mode 0600')
  t.equal((await fs.readFile(file, 'utf8')).trim(), key.toString('base64'), 'the file holds the key, base64')
})

t.test('a second call returns the same key instead of generating another', async (t) => {
  const dir = await tempHome(t)
  const config = loadConfig({ LANDLORD_HOME: dir })
  const first = await loadMasterKey(config, log)
  const second = await loadMasterKey(config, log)
  t.equal(second.toString('hex'), first.toString('hex'))
})

t.test('a home that does not exist yet is created, closed to others', async (t) => {
  const dir = await tempHome(t)
  const home = path.join(dir, 'nested', 'home')
  const key = await loadMasterKey(loadConfig({ LANDLORD_HOME: home }), log)
  t.equal(key.length, 32)
  t.equal((await fs.stat(home)).mode & 0o777, 0o700, 'the home directory is mode 0700')
  t.ok(await exists(path.join(home, 'master.key')))
})

// A loser of the race must never read a half-written file: the key is written
// to a temp file and linked into place. Many rounds, since a race shows rarely
// (about 1 round in 500 to 1 in 12 before the key was linked into place).
t.test('first starts racing each other agree on one key, none fails, and no temp file is left', async (t) => {
  const failures: string[] = []
  let disagreements = 0
  let leftovers = 0
  for (let round = 0; round < 300; round++) {
    const dir = await tempHome(t)
    const config = loadConfig({ LANDLORD_HOME: dir })
    const results = await Promise.allSettled([loadMasterKey(config, log), loadMasterKey(config, log), loadMasterKey(config, log)])
    const keys = new Set<string>()
    for (const r of results) {
      if (r.status === 'rejected') failures.push(String(r.reason))
      else keys.add(r.value.toString('hex'))
    }
    if (keys.size > 1) disagreements++
    if ((await fs.readdir(dir)).join() !== 'master.key') leftovers++
  }
  t.equal(disagreements, 0, 'never two different keys')
  t.same(failures, [], 'no racing start throws')
  t.equal(leftovers, 0, 'the home holds master.key and nothing else')
})

t.test('a master.key file holding anything but a 32-byte base64 key stops the start', async (t) => {
  const dir = await tempHome(t)
  const config = loadConfig({ LANDLORD_HOME: dir })
  const file = path.join(dir, 'master.key')
  for (const [what, content] of [
    ['garbage', 'this is not a key\n'],
    ['an empty file', ''],
    ['a 16-byte key', randomBytes(16).toString('base64')],
    ['a 33-byte key', randomBytes(33).toString('base64')],
  ] as const) {
    await fs.writeFile(file, content, { mode: 0o600 })
    await t.rejects(loadMasterKey(config, log), /does not hold a 32-byte base64 key/, what)
    t.equal(await fs.readFile(file, 'utf8'), content, `${what}: the file is left as it was, never overwritten`)
  }
})

/**
 * Runs `fn` as a user whom a directory's mode bits bind: as itself, or, when the
 * tests run as root (who ignores them), with nobody's effective uid and gid.
 * In-process, after every module is loaded: a child running as nobody would have
 * to read the checkout, which may sit in a directory closed to others (0700).
 * glibc applies seteuid to every thread, so libuv's fs threads run as nobody too.
 */
async function asReader<T>(fn: () => Promise<T>): Promise<T> {
  if (process.geteuid?.() !== 0) return fn()
  const [uid, gid] = [process.geteuid(), process.getegid!()]
  process.setegid!(65534)
  process.seteuid!(65534)
  try {
    return await fn()
  } finally {
    process.seteuid!(uid)
    process.setegid!(gid)
  }
}

/** loadMasterKey's answer for a reader of `home`, the error as text. */
async function loadAsReader(home: string): Promise<string> {
  const config = loadConfig({ LANDLORD_HOME: home })
  return asReader(() =>
    loadMasterKey(config, log).then(
      (key) => key.toString('base64'),
      (err: unknown) => `error: ${String(err)}`,
    ),
  )
}

// Operators mount a key read-only (a secret volume) or keep the home owned by another user.
t.test('an existing master.key is read from a home the process cannot write to', async (t) => {
  const dir = await tempHome(t)
  const key = randomBytes(32).toString('base64')
  await fs.writeFile(path.join(dir, 'master.key'), key + '\n', { mode: 0o644 })
  await fs.chmod(dir, 0o777)
  t.equal(await loadAsReader(dir), key, 'the probe works: with a writable home the reader gets the key')
  await fs.chmod(dir, 0o555)
  try {
    const write = await asReader(() => fs.writeFile(path.join(dir, 'probe'), '').then(() => 'written', (err: { code?: string }) => err.code))
    t.equal(write, 'EACCES', 'the home is closed to the reader: a write is refused')
    t.equal(await loadAsReader(dir), key, 'the key on file is returned')
  } finally {
    await fs.chmod(dir, 0o700)
  }
  t.same(await fs.readdir(dir), ['master.key'], 'nothing was written')
})

t.test('with LANDLORD_MASTER_KEY set, that key is used and no file is written', async (t) => {
  const dir = await tempHome(t)
  const home = path.join(dir, 'home')
  const given = randomBytes(32)
  const key = await loadMasterKey(loadConfig({ LANDLORD_HOME: home, LANDLORD_MASTER_KEY: given.toString('base64') }), log)
  t.equal(key.toString('hex'), given.toString('hex'))
  t.notOk(await exists(path.join(home, 'master.key')), 'no master.key')
  t.notOk(await exists(home), 'not even the home directory')
})

t.test('with LANDLORD_MASTER_KEY set, an existing master.key file is ignored', async (t) => {
  const dir = await tempHome(t)
  const file = path.join(dir, 'master.key')
  const onDisk = randomBytes(32).toString('base64') + '\n'
  await fs.writeFile(file, onDisk, { mode: 0o600 })
  const given = randomBytes(32)
  const key = await loadMasterKey(loadConfig({ LANDLORD_HOME: dir, LANDLORD_MASTER_KEY: given.toString('base64') }), log)
  t.equal(key.toString('hex'), given.toString('hex'))
  t.equal(await fs.readFile(file, 'utf8'), onDisk, 'the file is untouched')
})

t.test('a process with another master key refuses to start, naming the variable', async (t) => {
  const h = await setup(t)
  const mine = h.config.masterKey!
  await verifyMasterKey(h.db, mine)
  await verifyMasterKey(h.db, mine)
  const err = await verifyMasterKey(h.db, randomBytes(32)).catch((e: unknown) => e)
  t.ok(err instanceof ConfigError)
  t.equal((err as ConfigError).variable, 'LANDLORD_MASTER_KEY')
})
