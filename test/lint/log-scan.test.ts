// The run's end scans every harness log for secrets (setup-run.ts): each
// pattern finds what it is meant to, and leaves redacted forms alone. And
// pino's redaction covers passwords, keys, secrets and connection strings.
import { Writable } from 'node:stream'
import t from 'tap'
import { createLogger } from '../../src/log.js'
import { SECRET_PATTERNS } from '../setup-run.js'

const leaks = (line: string) => SECRET_PATTERNS.filter(([, p]) => p.test(line)).map(([what]) => what)

t.test('each secret pattern finds its secret and spares the redacted form', async (t) => {
  t.same(leaks(`{"msg":"x","key":"landlord_${'A'.repeat(43)}"}`), ['an API key'])
  t.same(leaks('{"secret":"whsec_c2VjcmV0c2VjcmV0c2VjcmV0"}'), ['a webhook secret'])
  t.same(leaks('CREATE ROLE x PASSWORD \'SCRAM-SHA-256$4096:abc\''), ['a SCRAM verifier'])
  t.same(leaks('{"token":"hvs.ABCDEFGHIJKLMNOPQRSTUVWX"}'), ['a Vault token'])
  t.same(leaks('{"password":"hunter2"}'), ['a password field'])
  t.same(leaks('{"url":"postgres://app:hunter2@db:5432/x"}'), ['a URL with a password'])
  t.same(leaks('{"password":"[redacted]","url":"postgres://app:***@db:5432/x","key":"[redacted]"}'), [])
})

t.test('pino redacts passwords, keys, secrets, tokens and connection strings', async (t) => {
  let out = ''
  const log = createLogger('info', new Writable({ write: (chunk: Buffer, _e, cb) => ((out += chunk.toString()), cb()) }))
  log.info({
    req: { headers: { authorization: 'Bearer landlord_x' } },
    password: 'p1',
    creds: { password: 'p2', secret: 's', token: 't', key: 'k' },
    connectionString: 'postgres://a:b@h/d',
    config: { databaseUrl: 'postgres://a:b@h/d', redisUrl: 'redis://:pw@h' },
  }, 'hello')
  t.notMatch(out, /landlord_x|p1|p2|"s"|"t"|"k"|a:b@|:pw@/)
  t.equal(leaks(out).length, 0)
})
