// Envelope encryption and SCRAM verifiers: sealed blobs open only with their
// key and owner, and a verifier computed here is the one Postgres computes.
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import t from 'tap'
import { open, scramVerifier, seal } from '../../src/secrets/crypto.js'
import { quoteIdent } from '../../src/tenancy/identifiers.js'
import { setup } from '../helpers.js'

const key = randomBytes(32)
const plaintext = Buffer.from('correct horse battery staple')

t.test('a sealed blob opens with the same key and associated data', async (t) => {
  const blob = seal(key, plaintext, 'tenant-a')
  t.same(open(key, blob, 'tenant-a'), plaintext)
  t.notOk(blob.includes(plaintext), 'the plaintext is not in the blob')
  t.equal(blob.length, 12 + 16 + plaintext.length, 'iv, tag, then a ciphertext as long as the plaintext')
})

t.test('an empty plaintext round-trips too', async (t) => {
  t.same(open(key, seal(key, Buffer.alloc(0), 'x'), 'x'), Buffer.alloc(0))
})

t.test('a blob does not open under another owner (associated data)', async (t) => {
  const blob = seal(key, plaintext, 'tenant-a')
  t.throws(() => open(key, blob, 'tenant-b'), /unable to authenticate/)
  t.throws(() => open(key, blob, ''), /unable to authenticate/)
})

t.test('a blob does not open under another key', async (t) => {
  const blob = seal(key, plaintext, 'tenant-a')
  t.throws(() => open(randomBytes(32), blob, 'tenant-a'), /unable to authenticate/)
})

t.test('flipping any one byte (iv, tag or ciphertext) makes the blob unreadable', async (t) => {
  const blob = seal(key, plaintext, 'tenant-a')
  for (const [part, index] of [['iv', 0], ['iv', 11], ['tag', 12], ['tag', 27], ['ciphertext', 28], ['ciphertext', blob.length - 1]] as const) {
    const tampered = Buffer.from(blob)
    tampered[index] = tampered[index]! ^ 0x01
    t.throws(() => open(key, tampered, 'tenant-a'), `a flipped bit in the ${part} (byte ${index}) is detected`)
  }
})

t.test('a truncated blob is refused', async (t) => {
  const blob = seal(key, plaintext, 'tenant-a')
  t.throws(() => open(key, blob.subarray(0, blob.length - 1), 'tenant-a'), 'one byte of ciphertext missing')
  t.throws(() => open(key, blob.subarray(0, 28), 'tenant-a'), 'the whole ciphertext missing')
})

t.test('two seals of the same plaintext differ (a fresh random iv each time)', async (t) => {
  const a = seal(key, plaintext, 'tenant-a')
  const b = seal(key, plaintext, 'tenant-a')
  t.not(a.toString('hex'), b.toString('hex'))
  t.not(a.subarray(0, 12).toString('hex'), b.subarray(0, 12).toString('hex'), 'the ivs differ')
  t.same(open(key, a, 'tenant-a'), open(key, b, 'tenant-a'))
})

t.test('scramVerifier has the pg_authid format and a fresh salt by default', async (t) => {
  const a = scramVerifier('secret')
  const b = scramVerifier('secret')
  t.match(a, /^SCRAM-SHA-256\$4096:[A-Za-z0-9+/]{22}==\$[A-Za-z0-9+/]{43}=:[A-Za-z0-9+/]{43}=$/)
  t.not(a, b, 'two verifiers of one password differ by their salt')
  const salt = randomBytes(16)
  t.equal(scramVerifier('secret', salt, 4096), scramVerifier('secret', salt, 4096), 'deterministic for a given salt')
  t.not(scramVerifier('secret', salt, 4096), scramVerifier('Secret', salt, 4096))
})

t.test('scramVerifier computes what Postgres itself stores for the same password, salt and iterations', async (t) => {
  const h = await setup(t)
  const role = `${h.config.tenantDbPrefix}scram_probe`
  await h.cluster.query(`CREATE ROLE ${quoteIdent(role)} NOLOGIN`)

  /** Lets Postgres hash `password` (one session: the SET must apply to the ALTER) and returns what it stored. */
  async function postgresVerifier(password: string) {
    const client = new pg.Client({ connectionString: h.config.tenantClusterUrl })
    await client.connect()
    try {
      await client.query(`SET password_encryption = 'scram-sha-256'`)
      await client.query(`ALTER ROLE ${quoteIdent(role)} PASSWORD ${pg.escapeLiteral(password)}`)
    } finally {
      await client.end()
    }
    const stored = await h.cluster.query<{ rolpassword: string }>('SELECT rolpassword FROM pg_authid WHERE rolname = $1', [role])
    const verifier = stored.rows[0]?.rolpassword ?? ''
    const [, iterations = '', salt = ''] = /^SCRAM-SHA-256\$(\d+):([^$]+)\$/.exec(verifier) ?? []
    return { verifier, salt: Buffer.from(salt, 'base64'), iterations: Number(iterations) }
  }

  t.test('a printable ASCII password, symbols and quotes included', async (t) => {
    const password = `!"#$%&'()*+,-./09:;<=>?@AZ[\\]^_\`az{|}~`
    const pgv = await postgresVerifier(password)
    t.match(pgv.verifier, /^SCRAM-SHA-256\$4096:/, 'Postgres stored a SCRAM verifier')
    t.equal(pgv.salt.length, 16)
    t.equal(scramVerifier(password, pgv.salt, pgv.iterations), pgv.verifier)
  })

  t.test('a password like the ones the local backend generates', async (t) => {
    const password = randomBytes(24).toString('base64url')
    const pgv = await postgresVerifier(password)
    t.equal(scramVerifier(password, pgv.salt, pgv.iterations), pgv.verifier)
  })

  t.test('a password with a space ("some password")', async (t) => {
    // A space is printable ASCII, where SASLprep is the identity, so there is nothing to refuse.
    const pgv = await postgresVerifier('some password')
    let ours: string | undefined
    t.doesNotThrow(() => {
      ours = scramVerifier('some password', pgv.salt, pgv.iterations)
    }, 'the password is accepted')
    t.equal(ours, pgv.verifier, 'the verifier is the one Postgres stored')
  })

  // Postgres applies SASLprep (RFC 4013) beyond ASCII: NFKC, and characters such as
  // U+00AD and U+200B mapped to nothing. Rather than compute a verifier no client
  // could log in with, scramVerifier refuses those passwords.
  t.test('a password beyond printable ASCII is refused rather than hashed differently from Postgres', async (t) => {
    for (const password of ['soft\u00ADhyphen', 'zero\u200Bwidth', 'ﬁle', 'café', 'tab\there', '']) {
      t.throws(() => scramVerifier(password), /printable ASCII/, JSON.stringify(password))
    }
  })
})
