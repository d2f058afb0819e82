// tap "before" (package.json): migrates this run's template control database once.
import { beginRun } from './setup-run.js'

await beginRun()
