// `usecasecore jobs list | show | cancel | purge`: the jobs an operator looks after. Reads go to the job store; a
// cancel is CancelJob sent through a mediator of the CLI's own (validated, audited), in the job's tenant.
import { Container } from 'inversify';
import { createMediator } from '../../lib/core/mediator.js';
import type { JobRecord, JobState } from '../../lib/core/ports.js';
import { CancelJob, jobHandlers } from '../../lib/jobs/index.js';
import { audit, unitOfWork, validation } from '../../middleware/index.js';
import { knexModule } from '../knex/index.js';
import { KnexJobStore } from '../knex/job-store.js';
import { KnexUnitOfWork } from '../knex/unit-of-work.js';
import { EXIT, UsageError, listOf, table, type Command, type Invocation } from './common.js';

const STATES: readonly JobState[] = ['queued', 'running', 'succeeded', 'failed', 'dead', 'cancelled'];
/** States an operator must look at: the job will not run again by itself. */
const GAVE_UP = new Set<JobState>(['failed', 'dead']);
/** Who the CLI's sends are audited as. */
const OPERATOR = { id: 'usecasecore-cli', roles: ['operator'] };

const storeOf = (cli: Invocation) => new KnexJobStore(new KnexUnitOfWork(cli.db()), cli.tables.jobs);
const why = (job: JobRecord) => (job.failure ? `${job.failure.code ?? job.failure.kind}: ${job.failure.message}` : '');
const oneLine = (text: string) => text.replace(/\s+/g, ' ').slice(0, 80);

/**
 * The `jobs list` command.
 * @example usecasecore jobs list --state failed,dead --type LowStockAlert --json
 */
export const jobsListCommand: Command = {
  name: 'jobs list',
  summary: 'jobs newest first, with state, attempts and failure (exit 1 if any listed one failed or is dead)',
  usage: '[--type <type>] [--state <state,…>] [--older-than <duration>] [--tenant <t>] [--limit <n>] [options]',
  help: `Lists jobs newest first: id, type, tenant, state, attempts, when it was enqueued, and why it failed. A failed
or dead one will not run again by itself: see \`usecasecore jobs show <id>\`.

Options:
  --type <type>             of this job type only (e.g. LowStockAlert)
  --state <state,…>         in these states only: ${STATES.join(', ')}
  --older-than <duration>   enqueued longer ago than this (7d, 12h, 30m, 45s, 500ms)
  --tenant <tenant>         this tenant's only (default: every tenant)
  --limit <n>               at most n (default 50)

Exit codes: 0 none of those listed failed or is dead, 1 some did (or the database failed), 2 bad usage.`,
  options: {
    type: { type: 'string' },
    state: { type: 'string' },
    'older-than': { type: 'string' },
    tenant: { type: 'string' },
    limit: { type: 'string' },
  },
  async run(cli) {
    const limit = Number(cli.string('limit') ?? 50);
    if (!Number.isInteger(limit) || limit < 1) throw new UsageError('--limit must be a whole number ≥ 1, e.g. 50');
    const [type, tenant, states] = [
      cli.string('type'),
      cli.string('tenant'),
      listOf(cli.string('state'), '--state', STATES),
    ];
    const olderThan = cli.duration('older-than');
    const list = await storeOf(cli).list({
      limit,
      ...(type ? { type } : {}),
      ...(tenant ? { tenant } : {}),
      ...(states ? { states } : {}),
      ...(olderThan === undefined ? {} : { enqueuedBefore: Date.now() - olderThan }),
    });
    const human =
      list.length === 0
        ? 'No jobs.'
        : table([
            ['id', 'type', 'tenant', 'state', 'attempts', 'enqueued', 'failure'],
            ...list.map((j) => [j.jobId, j.type, j.tenant, j.state, String(j.attempts), j.enqueuedAt, oneLine(why(j))]),
          ]);
    const gaveUp = list.filter((j) => GAVE_UP.has(j.state)).length;
    cli.print(gaveUp > 0 ? `${human}\n\n${gaveUp} failed or dead: usecasecore jobs show <id>` : human, list);
    return gaveUp > 0 ? EXIT.problem : EXIT.ok;
  },
};

/**
 * The `jobs show` command.
 * @example usecasecore jobs show 0b6f…
 */
export const jobsShowCommand: Command = {
  name: 'jobs show',
  summary: 'one job: its state, attempts, times, result or failure (exit 1 if it failed, is dead or unknown)',
  usage: '<id> [options]',
  help: `Shows a job: its type, queue, tenant and key, its state and attempts, when it was enqueued, could start,
started and settled, and its result or why it failed.

Exit codes: 0 found and not failed or dead, 1 failed, dead, unknown, or the database failed, 2 bad usage.`,
  positionals: true,
  async run(cli) {
    if (cli.positionals.length !== 1) throw new UsageError('give one job id');
    const job = await storeOf(cli).status(cli.positionals[0]!);
    if (!job) {
      cli.print(
        `No job ${cli.positionals[0]} — check the id (usecasecore jobs list); settled ones may be purged`,
        null,
      );
      return EXIT.problem;
    }
    const times = [
      `enqueued ${job.enqueuedAt}`,
      `may start ${job.runAt}`,
      ...(job.startedAt ? [`started ${job.startedAt}`] : []),
      ...(job.settledAt ? [`settled ${job.settledAt}`] : []),
    ];
    const lines = [
      `${job.type} ${job.jobId}: ${job.state} after ${job.attempts} attempt${job.attempts === 1 ? '' : 's'}`,
      `queue ${job.queue}, tenant ${job.tenant}${job.key ? `, key ${job.key}` : ''}`,
      times.join(', '),
      ...(job.failure ? [`failure: ${why(job)}`] : []),
      ...(job.state === 'succeeded' ? [`result: ${JSON.stringify(job.result ?? null)}`] : []),
    ];
    cli.print(lines.join('\n'), job);
    return GAVE_UP.has(job.state) ? EXIT.problem : EXIT.ok;
  },
};

/**
 * The `jobs cancel` command.
 * @example usecasecore jobs cancel 0b6f…
 */
export const jobsCancelCommand: Command = {
  name: 'jobs cancel',
  summary: 'cancel queued jobs: they will not run when their message arrives',
  usage: '<id…> [options]',
  help: `Cancels jobs that no worker has taken yet: CancelJob, sent in each job's tenant and audited as
usecasecore-cli. A job a worker took already is not stopped (already_started).

Exit codes: 0 every job given is cancelled, 1 some is unknown or already started (the others were cancelled), 2 bad
usage.`,
  positionals: true,
  async run(cli) {
    const ids = [...new Set(cli.positionals)];
    if (ids.length === 0) throw new UsageError('give the ids of the jobs (usecasecore jobs list --state queued)');
    const store = storeOf(cli);
    const container = new Container();
    container.load(knexModule({ knex: cli.db(), ...cli.tableOptions }));
    const mediator = createMediator(container, {
      handlers: jobHandlers,
      middleware: [validation(), unitOfWork(), audit()],
    });
    const outcomes: Array<{ jobId: string; ok: boolean; message?: string }> = [];
    for (const jobId of ids) {
      const tenant = (await store.status(jobId))?.tenant;
      const result = tenant && (await mediator.send(new CancelJob({ jobId }), { tenant, actor: OPERATOR }));
      outcomes.push({ jobId, ok: result ? result.ok : false, ...(result && !result.ok ? result.failure : {}) });
    }
    const line = (o: (typeof outcomes)[number]) => `${o.jobId}: ${o.ok ? 'cancelled' : (o.message ?? 'no such job')}`;
    cli.print(outcomes.map(line).join('\n'), outcomes);
    return outcomes.every((o) => o.ok) ? EXIT.ok : EXIT.problem;
  },
};

/**
 * The `jobs purge` command.
 * @example usecasecore jobs purge --settled-before 30d
 */
export const jobsPurgeCommand: Command = {
  name: 'jobs purge',
  summary: 'delete the records of jobs settled longer ago than a duration (keyed ones are kept)',
  usage: '--settled-before <duration> [options]',
  help: `Deletes the records of jobs that succeeded, failed, died or were cancelled longer ago than the duration.
Queued and running jobs are never deleted, nor keyed ones (their key keeps answering with the same job).

Options:
  --settled-before <duration>   e.g. 30d, 12h, 30m, 45s, 500ms

Exit codes: 0 done, 1 the database failed, 2 bad usage.`,
  options: { 'settled-before': { type: 'string' } },
  async run(cli) {
    const ms = cli.duration('settled-before');
    if (ms === undefined) throw new UsageError('say how long ago jobs must have settled, e.g. --settled-before 30d');
    const deleted = await storeOf(cli).purge(ms);
    const before = new Date(Date.now() - ms).toISOString();
    cli.print(`Deleted ${deleted} job record${deleted === 1 ? '' : 's'} settled before ${before}`, { deleted, before });
    return EXIT.ok;
  },
};
