// rotate-credentials: every lease issued up to the request is revoked and its
// sessions ended; new requests get fresh credentials.
import type { Job } from 'bullmq'
import type { Tenant } from '../../db/schema.js'
import type { Logger } from '../../log.js'
import type { WorkerDeps } from '../context.js'
import type { LifecycleJobData } from '../queues.js'
import { proveOwnership } from './prove.js'

export async function rotate(deps: WorkerDeps, tenant: Tenant, job: Job<LifecycleJobData>, log: Logger): Promise<number> {
  await proveOwnership(deps.cluster, tenant)
  const issuedBefore = job.data.requestedAt ? new Date(job.data.requestedAt) : new Date(job.timestamp)
  const revoked = await deps.secrets.revokeAll(tenant, { issuedBefore })
  log.info({ revoked }, 'credentials rotated')
  return revoked
}
