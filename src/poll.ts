// One way to wait for something that has no event to await: poll with a deadline.

export interface PollOptions {
  /** Give up after this long. */
  timeoutMs: number
  /** Pause between checks (default 25 ms). */
  intervalMs?: number
}

/**
 * Calls `check` until it returns a value other than undefined, and returns
 * that value; after `timeoutMs`, returns undefined. The caller decides what a
 * timeout means (an error, a 503, a retry), so no exception is used to say it.
 */
export async function pollUntil<T>(check: () => Promise<T | undefined>, opts: PollOptions): Promise<T | undefined> {
  const deadline = Date.now() + opts.timeoutMs
  for (;;) {
    const value = await check()
    if (value !== undefined) return value
    if (Date.now() >= deadline) return undefined
    await new Promise((resolve) => setTimeout(resolve, opts.intervalMs ?? 25))
  }
}
