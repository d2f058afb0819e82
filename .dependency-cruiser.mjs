// The layer rules of DESIGN.md ("Layout") and STYLE.md, checked by `npm run lint`
// (rules reference: https://github.com/sverweij/dependency-cruiser/blob/main/doc/rules-reference.md).
// Type-only imports count (tsPreCompilationDeps): a type borrowed from another
// layer couples the two as a value does, even though the compiler erases it.
// Only config.ts reads process.env: that rule is ESLint's (eslint.config.js).

const ENTRY_POINTS = '^src/(main|cli|compose)\\.ts$'

const rules = [
  {
    name: 'no-circular',
    severity: 'error',
    comment: 'A module must not reach itself through its imports.',
    from: {},
    to: { circular: true },
  },
  {
    name: 'entry-points-only',
    severity: 'error',
    comment: 'Only the entry points (main.ts, cli.ts, compose.ts) build the app, start workers, or import each other.',
    from: { pathNot: ENTRY_POINTS },
    to: { path: ['^src/api/app\\.ts$', '^src/jobs/index\\.ts$', ENTRY_POINTS] },
  },
  {
    name: 'jobs-not-api',
    severity: 'error',
    comment: 'Workers never import the HTTP layer.',
    from: { path: '^src/jobs/' },
    to: { path: '^src/api/' },
  },
  {
    name: 'machine-pure',
    severity: 'error',
    comment: 'The statechart is pure: machine.ts and events.ts import only xstate and each other.',
    from: { path: '^src/lifecycle/(machine|events)\\.ts$' },
    to: { pathNot: ['^src/lifecycle/(machine|events)\\.ts$', '(^|/)node_modules/xstate/'] },
  },
  {
    name: 'migrations-standalone',
    severity: 'error',
    comment: 'Control-plane migrations take Kysely<any> and import nothing from src/: they must not change when src/ does.',
    from: { path: '^migrations/' },
    to: { path: '^src/' },
  },
  {
    name: 'db-inward',
    severity: 'error',
    comment:
      'src/db/ is the innermost layer: no api, jobs, lifecycle, webhooks, secrets, or tenancy beyond identifiers.ts. ' +
      'The one exception is lifecycle/events.ts, pure declarations: the registry stores its states and steps.',
    from: { path: '^src/db/' },
    to: {
      path: ['^src/(api|jobs|lifecycle|webhooks|secrets)/', '^src/tenancy/(?!identifiers\\.ts$)'],
      pathNot: '^src/lifecycle/events\\.ts$',
    },
  },
  {
    name: 'tenancy-inward',
    severity: 'error',
    comment: 'Cluster work does not know about HTTP, jobs, the lifecycle or webhooks.',
    from: { path: '^src/tenancy/' },
    to: { path: '^src/(api|jobs|lifecycle|webhooks)/' },
  },
  {
    name: 'fleet-inward',
    comment: 'Fleet migration runs are domain code: they do not know about HTTP or jobs (jobs call them).',
    from: { path: '^src/fleet/' },
    to: { path: '^src/(api|jobs)/' },
  },
  {
    name: 'webhooks-secrets-inward',
    severity: 'error',
    comment: 'Webhook delivery and secrets backends do not know about HTTP or jobs.',
    from: { path: '^src/(webhooks|secrets)/' },
    to: { path: '^src/(api|jobs)/' },
  },
]

/** @type {import('dependency-cruiser').IConfiguration} */
export default {
  forbidden: rules,
  options: {
    tsPreCompilationDeps: true,
    // Packages are leaves; Node's own modules stay visible (machine-pure forbids them too).
    doNotFollow: { path: 'node_modules' },
  },
}
