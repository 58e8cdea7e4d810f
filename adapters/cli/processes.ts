// `usecasecore processes list | show | retry | cancel`: the processes an operator looks after. Reads go to the store;
// retry and cancel are RetryProcess and CancelProcess sent through a mediator of the CLI's own (validated, audited,
// their job written with the commit), which asks a worker running the process to move it.
import { Container } from 'inversify';
import { createMediator } from '../../lib/core/mediator.js';
import type { ProcessRecord, ProcessState } from '../../lib/core/ports.js';
import { CancelProcess, processes, RetryProcess } from '../../lib/processes/index.js';
import { audit, publish, unitOfWork, validation } from '../../middleware/index.js';
import { knexModule } from '../knex/index.js';
import { KnexProcessStore } from '../knex/process-store.js';
import { KnexUnitOfWork } from '../knex/unit-of-work.js';
import { EXIT, UsageError, listOf, table, type Command, type Invocation } from './common.js';

const STATES: readonly ProcessState[] = ['running', 'compensating', 'completed', 'compensated', 'failed'];
/** Who the CLI's sends are audited as. */
const OPERATOR = { id: 'usecasecore-cli', roles: ['operator'] };

const storeOf = (cli: Invocation) => new KnexProcessStore(new KnexUnitOfWork(cli.db()), cli.tables);
const failed = (list: readonly ProcessRecord[]) => list.filter((p) => p.state === 'failed');
const why = (p: ProcessRecord) => (p.failure ? `${p.failure.code ?? p.failure.kind}: ${p.failure.message}` : '');
const oneLine = (text: string) => text.replace(/\s+/g, ' ').slice(0, 80);

/** The step a process is at: its open step, else its last settled one. */
function stepOf(process: ProcessRecord): string {
  const steps = process.steps;
  const at = steps.findIndex((s) => ['pending', 'running', 'waiting'].includes(s.state));
  const step = steps[at < 0 ? steps.length - 1 : at];
  return step ? `${steps.indexOf(step)} ${step.name} ${step.state}` : '-';
}

/**
 * The `processes list` command.
 * @example usecasecore processes list --state failed --json
 */
export const processesListCommand: Command = {
  name: 'processes list',
  summary: 'processes newest first, with the step each is at (exit 1 if any listed one failed)',
  usage: '[--tenant <tenant>] [--state <state,…>] [--limit <n>] [options]',
  help: `Lists processes newest first: id, type, tenant, state, the step each is at (its open step, else its last), and
when it last moved. A failed one is an operator's: see \`usecasecore processes show <id>\`, then retry it.

Options:
  --tenant <tenant>    this tenant's only (default: every tenant)
  --state <state,…>    in these states only: ${STATES.join(', ')}
  --limit <n>          at most n (default 50)

Exit codes: 0 none of those listed failed, 1 some failed (or the database failed), 2 bad usage.`,
  options: { tenant: { type: 'string' }, state: { type: 'string' }, limit: { type: 'string' } },
  async run(cli) {
    const limit = Number(cli.string('limit') ?? 50);
    if (!Number.isInteger(limit) || limit < 1) throw new UsageError('--limit must be a whole number ≥ 1, e.g. 50');
    const states = listOf(cli.string('state'), '--state', STATES);
    const tenant = cli.string('tenant');
    const list = await storeOf(cli).list({ limit, ...(tenant ? { tenant } : {}), ...(states ? { states } : {}) });
    const human =
      list.length === 0
        ? 'No processes.'
        : table([
            ['id', 'type', 'tenant', 'state', 'step', 'updated'],
            ...list.map((p) => [p.processId, p.type, p.tenant, p.state, stepOf(p), p.updatedAt]),
          ]);
    const stuck = failed(list).length;
    cli.print(stuck > 0 ? `${human}\n\n${stuck} failed: usecasecore processes show <id>` : human, list);
    return stuck > 0 ? EXIT.problem : EXIT.ok;
  },
};

/**
 * The `processes show` command.
 * @example usecasecore processes show 0b6f…
 */
export const processesShowCommand: Command = {
  name: 'processes show',
  summary: 'one process with its steps (exit 1 if it failed or is unknown)',
  usage: '<id> [options]',
  help: `Shows a process: its type, tenant, who started it, its state and why it failed or was undone, its deadline,
and each step with its state, attempts, compensations and failure.

Exit codes: 0 found and not failed, 1 failed (retry it: usecasecore processes retry <id>), unknown, or the database
failed, 2 bad usage.`,
  positionals: true,
  async run(cli) {
    if (cli.positionals.length !== 1) throw new UsageError('give one process id');
    const process = await storeOf(cli).get(cli.positionals[0]!);
    if (!process) {
      cli.print(`No process ${cli.positionals[0]} — check the id (usecasecore processes list)`, null);
      return EXIT.problem;
    }
    const by = process.actor ? `, started by ${process.actor.id}` : '';
    const lines = [
      `${process.type} ${process.processId}: ${process.state} (tenant ${process.tenant}${by})`,
      `started ${process.startedAt}, updated ${process.updatedAt}` +
        (process.endedAt ? `, ended ${process.endedAt}` : '') +
        (process.deadlineAt ? `, deadline ${process.deadlineAt}` : ''),
      ...(process.failure ? [`failure: ${why(process)}`] : []),
      '',
      table([
        ['#', 'step', 'state', 'attempts', 'compensations', 'failure'],
        ...process.steps.map((s, i) => {
          const failure = s.failure ? oneLine(`${s.failure.code ?? s.failure.kind}: ${s.failure.message}`) : '';
          return [String(i), s.name, s.state, String(s.attempts), String(s.compensations), failure];
        }),
      ]),
      ...(process.state === 'failed'
        ? ['', `Fix the cause, then: usecasecore processes retry ${process.processId}`]
        : []),
    ];
    cli.print(lines.join('\n'), process);
    return process.state === 'failed' ? EXIT.problem : EXIT.ok;
  },
};

/** Sends `request` for each id as the CLI's operator, in the process's own tenant. */
async function moveEach(cli: Invocation, request: typeof CancelProcess | typeof RetryProcess): Promise<number> {
  const ids = [...new Set(cli.positionals)];
  if (ids.length === 0) throw new UsageError('give the ids of the processes (usecasecore processes list)');
  const store = storeOf(cli);
  const container = new Container();
  container.load(knexModule({ knex: cli.db(), ...cli.tableOptions }));
  const mediator = createMediator(container, {
    handlers: processes([]).handlers,
    middleware: [validation(), unitOfWork(), audit(), publish()],
  });
  const outcomes = [];
  for (const processId of ids) {
    const tenant = (await store.get(processId))?.tenant;
    const result = tenant && (await mediator.send(new request({ processId }), { tenant, actor: OPERATOR }));
    outcomes.push({ processId, ok: result ? result.ok : false, ...(result && !result.ok ? result.failure : {}) });
  }
  const done = request === CancelProcess ? 'cancel' : 'retry';
  cli.print(
    outcomes
      .map((o) =>
        o.ok
          ? `${o.processId}: ${done} asked of the workers (follow it: usecasecore processes show ${o.processId})`
          : `${o.processId}: ${'message' in o ? o.message : 'no such process'}`,
      )
      .join('\n'),
    outcomes,
  );
  return outcomes.every((o) => o.ok) ? EXIT.ok : EXIT.problem;
}

/**
 * The `processes retry` command.
 * @example usecasecore processes retry 0b6f…
 */
export const processesRetryCommand: Command = {
  name: 'processes retry',
  summary: 'undo again what a process that failed while compensating could not undo',
  usage: '<id…> [options]',
  help: `Retries processes that failed while undoing a step (its compensation kept failing): a worker running the
process compensates again from that step. The CLI has none of your processes' code, so it writes RetryProcess's job
for a worker (audited as usecasecore-cli); the relay sends it. Fix the cause first (\`processes show <id>\` says it).

Exit codes: 0 every process given was retried, 1 some is unknown or not failed (the others were retried), 2 bad
usage.`,
  positionals: true,
  run: (cli) => moveEach(cli, RetryProcess),
};

/**
 * The `processes cancel` command.
 * @example usecasecore processes cancel 0b6f…
 */
export const processesCancelCommand: Command = {
  name: 'processes cancel',
  summary: 'stop running processes, undoing what they did',
  usage: '<id…> [options]',
  help: `Cancels running processes: a worker running the process fails its open step as cancelled and undoes the
completed steps in reverse (the process ends compensated, or failed when an undo fails). The CLI writes
CancelProcess's job for a worker (audited as usecasecore-cli); the relay sends it.

Exit codes: 0 every process given was asked to stop, 1 some is unknown or has ended (the others were asked), 2 bad
usage.`,
  positionals: true,
  run: (cli) => moveEach(cli, CancelProcess),
};
