// Which way imports may point (docs/architecture.md draws it): samples → adapters →
// lib/{processes → jobs → messaging, audit → ops} → middleware → lib/core. `npm test` runs it (npm run check:deps);
// a cycle or a wrong-way import fails the build.
const LIB_ABOVE_MIDDLEWARE = '^lib/(messaging|jobs|processes|audit|ops|testing)/';
const DRIVERS = '^(knex|pg|amqplib|knex-pglite|@electric-sql/pglite|@opentelemetry/|@dbos-inc/)';

/** A rule forbidding imports from `from` to `to`, with the fix in its comment. */
const never = (name, comment, from, to) => ({ name, comment, severity: 'error', from, to });

module.exports = {
  forbidden: [
    {
      name: 'no-cycle',
      comment: 'An import cycle: break it by moving the shared piece down a layer (see docs/architecture.md).',
      severity: 'error',
      from: { path: '^(lib|middleware|adapters)/' },
      to: { circular: true },
    },
    never(
      'core-imports-nothing-above',
      'lib/core is the bottom layer: it imports no other folder of the project.',
      { path: '^lib/core/' },
      { path: '^(lib/(messaging|jobs|processes|audit|ops|testing)|middleware|adapters|samples|spec|bench)/' },
    ),
    never(
      'middleware-see-core-only',
      'A middleware sees lib/core (its ports and types) and nothing above it: put what it needs in a port.',
      { path: '^middleware/' },
      { path: `${LIB_ABOVE_MIDDLEWARE}|^(adapters|samples|spec|bench)/` },
    ),
    never(
      'layers-below-adapters',
      'lib/ never imports adapters, samples, specs or benches: adapters implement the ports lib/ declares.',
      { path: '^lib/' },
      { path: '^(adapters|samples|spec|bench)/' },
    ),
    never(
      'messaging-below-jobs',
      'Jobs are built on messaging (work() serves a queue), never the other way.',
      { path: '^lib/messaging/' },
      { path: '^lib/(jobs|processes|audit|ops|testing)/' },
    ),
    never(
      'jobs-on-messaging-only',
      'Jobs use core, middleware names and messaging; processes, audit, ops and the testing kit sit beside or above.',
      { path: '^lib/jobs/' },
      { path: '^lib/(processes|audit|ops|testing)/' },
    ),
    never(
      'processes-on-jobs',
      'Processes run their steps as jobs (on messaging); audit, ops and the testing kit sit beside or above them.',
      { path: '^lib/processes/' },
      { path: '^lib/(audit|ops|testing)/' },
    ),
    never(
      'audit-on-ops-only',
      'The audit sealer uses the ops timer, nothing else beside it.',
      { path: '^lib/audit/' },
      {
        path: '^lib/(messaging|jobs|processes|testing)/',
      },
    ),
    never(
      'ops-stands-alone',
      'Retention and the timer see the ports in lib/core only.',
      { path: '^lib/ops/' },
      {
        path: '^lib/(messaging|jobs|processes|audit|testing)/',
      },
    ),
    never(
      'only-adapters-touch-drivers',
      'Only adapters/ import database, broker or telemetry drivers; lib/ and middleware/ see ports.',
      { path: '^(lib|middleware)/' },
      { dependencyTypes: ['npm', 'npm-dev', 'npm-optional', 'npm-peer'], path: DRIVERS },
    ),
    never(
      'port-implementations-stay-apart',
      'memory, knex, amqp, otel and dbos implement ports side by side; the driving adapters (http, cli) may use them.',
      { path: '^adapters/(memory|knex|amqp|otel|dbos)/' },
      { path: '^adapters/(http|cli)/' },
    ),
    never(
      'adapters-below-samples',
      'Adapters never import the sample service, specs or benches.',
      { path: '^adapters/' },
      {
        path: '^(samples|spec|bench)/',
      },
    ),
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(dist|coverage|node_modules)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js'] },
    reporterOptions: { text: { highlightFocused: true } },
  },
};
