// src/lifecycle/README.md shows the statechart as the machine has it.
import { promises as fs } from 'node:fs'
import t from 'tap'
import { README, withTable } from '../../scripts/lifecycle-table.js'
import { hasTag, stateOf, statesTagged, stepOf, TRANSITIONAL } from '../../src/lifecycle/states.js'
import { lifecycleTable } from '../../src/lifecycle/table.js'

t.test('the statechart table in src/lifecycle/README.md is current (run `npx tsx scripts/lifecycle-table.ts`)', async (t) => {
  const readme = await fs.readFile(README, 'utf8')
  t.equal(readme, withTable(readme))
  t.match(lifecycleTable(), /\| `decommissioned` \| fenced, locked \| {2}\| RESTORE \| withinRetention and not provisioned \| `provisioning` \| job provision \|/)
})

t.test('what the code asks about states is read from the machine', async (t) => {
  t.equal(stateOf('wipe'), 'wiping')
  t.equal(stepOf('suspending'), 'suspend')
  t.equal(stepOf('active'), undefined)
  t.same([...TRANSITIONAL], ['provisioning', 'suspending', 'resuming', 'hibernating', 'waking', 'decommissioning', 'restoring', 'wiping'])
  t.same([...statesTagged('locked')].sort(), ['decommissioned', 'decommissioning', 'suspended', 'suspending', 'wiped', 'wiping'])
  t.same([...statesTagged('settling')].sort(), ['hibernating', 'restoring', 'resuming', 'waking'])
  t.same([...statesTagged('serving')], ['active'])
  t.ok(hasTag('wiped', 'gone'))
  t.notOk(hasTag('failed', 'fenced'))
})
