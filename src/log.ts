// The one pino configuration: redaction of anything secret is set here, once.
import pino, { type Logger } from 'pino'

export const REDACT = [
  'req.headers.authorization',
  'headers.authorization',
  '*.password',
  '*.secret',
  '*.token',
  '*.key',
  'password',
  'secret',
  'token',
  'key',
  // Connection strings may carry a password.
  'connectionString',
  '*.connectionString',
  'databaseUrl',
  '*.databaseUrl',
  'tenantClusterUrl',
  '*.tenantClusterUrl',
  'redisUrl',
  '*.redisUrl',
]

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino({ level, redact: { paths: REDACT, censor: '[redacted]' }, base: { service: 'landlord' } }, destination)
}

export type { Logger }
