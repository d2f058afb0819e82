// The bootstrap admin key: only its hash is stored; a generated one is shown once.
import t from 'tap'
import { ensureAdminKey, hashKey } from '../../src/db/api-keys.js'
import { authenticate as authenticateKey } from '../../src/db/principals.js'

const authenticate = async (db: Parameters<typeof authenticateKey>[0], key: string) => (await authenticateKey(db, key))?.principal
import { ADMIN_KEY, setup } from '../helpers.js'

t.test('bootstrap keys', async (t) => {
  const h = await setup(t)
  const { db } = h

  t.test('LANDLORD_ADMIN_KEY is stored as a hash and authenticates', async (t) => {
    t.equal(await authenticate(db, ADMIN_KEY), 'admin')
    const rows = await db.selectFrom('api_keys').selectAll().execute()
    t.equal(rows.length, 1)
    t.equal(rows[0]?.key_hash, hashKey(ADMIN_KEY))
    t.notOk(JSON.stringify(rows).includes(ADMIN_KEY), 'the key itself is nowhere in the table')
  })

  t.test('changing LANDLORD_ADMIN_KEY revokes the old one', async (t) => {
    t.equal(await ensureAdminKey(db, 'rotated-key'), undefined)
    t.equal(await authenticate(db, 'rotated-key'), 'admin')
    t.equal(await authenticate(db, ADMIN_KEY), undefined)
    await ensureAdminKey(db, ADMIN_KEY)
    t.equal(await authenticate(db, ADMIN_KEY), 'admin', 'going back re-enables it')
    t.equal(await authenticate(db, 'rotated-key'), undefined)
  })

  t.test('with no key configured and none stored, one is generated once', async (t) => {
    await db.deleteFrom('api_keys').execute()
    const [a, b] = await Promise.all([ensureAdminKey(db, undefined), ensureAdminKey(db, undefined)])
    const generated = a ?? b
    t.ok(generated, 'one start generated a key')
    t.ok(a === undefined || b === undefined, 'only one of two racing starts did')
    t.match(generated, /^landlord_[A-Za-z0-9_-]{43}$/)
    t.equal(await authenticate(db, generated!), 'admin')
    t.equal(await ensureAdminKey(db, undefined), undefined, 'later starts print nothing')
  })
})
