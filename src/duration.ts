// ISO 8601 durations (PnW, PnDTnHnMnS) to milliseconds. Years and months are
// refused: their length depends on the calendar, and retention must be exact.
const ISO_DURATION = /^P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$/

export function parseIsoDuration(text: string): number | undefined {
  const m = ISO_DURATION.exec(text)
  if (!m || text === 'P' || text.endsWith('T')) return undefined
  const [, w, d, h, min, s] = m
  const n = (v: string | undefined) => (v === undefined ? 0 : Number(v))
  const ms = Math.round(((((n(w) * 7 + n(d)) * 24 + n(h)) * 60 + n(min)) * 60 + n(s)) * 1000)
  // Enough digits overflow to Infinity, or past what a Date can add exactly: not a duration anyone means.
  return Number.isSafeInteger(ms) ? ms : undefined
}

/** Short durations such as `5s`, `30m`, `2h`, `1d`, used by schedules. */
export function parseShortDuration(text: string): number | undefined {
  const m = /^(\d+)(ms|s|m|h|d)$/.exec(text.trim())
  if (!m) return undefined
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 'ms']
  const ms = Number(m[1]) * unit
  return Number.isSafeInteger(ms) ? ms : undefined
}
