// The outbox relay: moves committed outbox rows to BullMQ. Rows are claimed
// with FOR UPDATE SKIP LOCKED, so any number of relays can run; a row is marked
// relayed only after BullMQ has it, and the job id `ob-<row id>` makes a second
// hand-over of the same row a no-op. LISTEN wakes the relay on commit; a poll
// covers lost notifications and rows left by a crash.
import pg from 'pg'
import type { Db } from '../db/index.js'
import { OUTBOX_CHANNEL, claimUnrelayed, markRelayed } from '../db/outbox.js'
import type { Logger } from '../log.js'
import type { Queues } from './queues.js'

export const jobId = (outboxId: string) => `ob-${outboxId}`

export interface RelayOptions {
  db: Db
  databaseUrl: string
  queues: Queues
  log: Logger
  pollMs?: number
  batch?: number
}

export class OutboxRelay {
  private listener: pg.Client | undefined
  private timer: NodeJS.Timeout | undefined
  private running: Promise<void> | undefined
  private again = false
  private stopped = true

  constructor(private readonly opts: RelayOptions) {}

  async start(): Promise<void> {
    this.stopped = false
    await this.listen()
    this.schedule(0)
  }

  async stop(): Promise<void> {
    this.stopped = true
    clearTimeout(this.timer)
    await this.running
    const l = this.listener
    this.listener = undefined
    await l?.end().catch(() => {})
  }

  /** Relays every pending row; returns how many were handed over. */
  async drain(): Promise<number> {
    let total = 0
    for (;;) {
      const n = await this.relayBatch()
      total += n
      if (n < (this.opts.batch ?? 100)) return total
    }
  }

  private async listen(): Promise<void> {
    const client = new pg.Client({ connectionString: this.opts.databaseUrl, application_name: 'landlord-relay' })
    client.on('notification', () => this.kick())
    client.on('error', (err) => {
      this.opts.log.warn({ err }, 'outbox listener lost; polling until it is back')
      if (this.listener === client) this.listener = undefined
      void client.end().catch(() => {})
      this.relisten(1000)
    })
    await client.connect()
    await client.query(`LISTEN ${OUTBOX_CHANNEL}`)
    if (this.stopped) return void (await client.end())
    this.listener = client
  }

  /** Reconnects the listener, backing off up to 30 s, until it works or the relay stops. */
  private relisten(delayMs: number): void {
    if (this.stopped) return
    setTimeout(() => {
      this.listen().catch(() => this.relisten(Math.min(delayMs * 2, 30_000)))
    }, delayMs).unref()
  }

  private kick(): void {
    if (this.stopped) return
    if (this.running) {
      this.again = true
      return
    }
    clearTimeout(this.timer)
    this.running = this.drain()
      .then(() => {})
      .catch((err: unknown) => this.opts.log.error({ err }, 'outbox relay failed; will retry'))
      .finally(() => {
        this.running = undefined
        const again = this.again
        this.again = false
        this.schedule(again ? 0 : (this.opts.pollMs ?? 1000))
      })
  }

  private schedule(ms: number): void {
    if (this.stopped) return
    clearTimeout(this.timer)
    this.timer = setTimeout(() => this.kick(), ms)
    this.timer.unref()
  }

  private async relayBatch(): Promise<number> {
    const { db, queues } = this.opts
    return db.transaction().execute(async (trx) => {
      const rows = await claimUnrelayed(trx, this.opts.batch ?? 100)
      if (rows.length === 0) return 0
      const lifecycle = rows.filter((r) => r.kind === 'job')
      const fleet = rows.filter((r) => r.kind === 'fleet')
      const webhooks = rows.filter((r) => r.kind === 'webhook' || r.kind === 'dispatch')
      if (lifecycle.length > 0) {
        await queues.lifecycle.addBulk(
          lifecycle.map((r) => ({ name: r.name, data: r.payload as never, opts: { jobId: jobId(r.id) } })),
        )
      }
      if (fleet.length > 0) {
        // One run at a time: its concurrency is the queue's, across every worker process.
        const concurrency = Math.max(...fleet.map((r) => Number((r.payload as { concurrency?: number }).concurrency ?? 1)))
        await queues.fleet.setGlobalConcurrency(concurrency)
        await queues.fleet.addBulk(fleet.map((r) => ({ name: r.name, data: r.payload as never, opts: { jobId: jobId(r.id) } })))
      }
      if (webhooks.length > 0) {
        await queues.webhooks.addBulk(
          webhooks.map((r) => ({
            // An event is fanned out to endpoints; a dispatch wakes deliveries.
            name: r.kind === 'dispatch' ? 'dispatch' : 'fanout',
            data: r.kind === 'dispatch' ? r.payload : { outboxId: r.id, type: r.name },
            opts: { jobId: jobId(r.id) },
          })),
        )
      }
      await markRelayed(
        trx,
        rows.map((r) => r.id),
      )
      this.opts.log.debug({ count: rows.length }, 'outbox rows relayed')
      return rows.length
    })
  }
}
