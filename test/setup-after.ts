// tap "after" (package.json): drops this run's template, then fails the run if
// any of its harnesses left a database, role or Redis key behind (removed now),
// or wrote a secret to its log.
import { endRun } from './setup-run.js'

const leftovers = await endRun()
if (leftovers.length > 0) {
  process.stderr.write(`\nleak check: this run's tests left behind (now removed):\n${leftovers.map((l) => `  ${l}\n`).join('')}\n`)
  process.exitCode = 1
}
