// `usecasecore outbox status | retry | purge`: what waits in the outbox, parked rows back in line, sent rows gone.
import { KnexOutbox } from '../knex/outbox.js';
import { KnexUnitOfWork } from '../knex/unit-of-work.js';
import { EXIT, UsageError, formatDuration, table, type Command, type Invocation } from './common.js';

const outboxOf = (cli: Invocation) => new KnexOutbox(new KnexUnitOfWork(cli.db()), cli.tables.outbox);
const rows = (n: number) => `${n} row${n === 1 ? '' : 's'}`;
const oneLine = (text: string | null) => (text ?? '').replace(/\s+/g, ' ').slice(0, 80);
/** Parked rows `outbox status` lists (the oldest). */
const PARKED_SHOWN = 20;

/**
 * The `outbox status` command.
 * @example usecasecore outbox status --json
 */
export const outboxStatusCommand: Command = {
  name: 'outbox status',
  summary: 'rows unsent, in flight, scheduled, parked, sent per type; the oldest unsent (exit 1 if one is parked)',
  usage: '[options]',
  help: `Counts the outbox rows of each message type: unsent (committed and due, not yet sent or parked: the backlog,
in flight included), in flight (unsent rows a relay has claimed right now), scheduled (not due yet: delayed jobs,
timeouts; not part of the backlog), parked (set aside after their last failed attempt: see \`usecasecore outbox
retry\`) and sent (kept until \`usecasecore outbox purge\`), with the age of the oldest unsent row.

Exit codes: 0 nothing is parked, 1 some row is parked (or the database failed), 2 bad usage.`,
  async run(cli) {
    const outbox = outboxOf(cli);
    const status = await outbox.status();
    const { totals } = status;
    const parked = totals.parked > 0 ? await outbox.parked(PARKED_SHOWN) : [];
    const age = (ms: number | null) => (ms === null ? '-' : formatDuration(ms));
    const line = (kind: string, type: string, t: typeof totals) => [
      kind,
      type,
      ...[t.unsent, t.inFlight, t.scheduled, t.parked, t.sent].map(String),
      age(t.oldestUnsentAgeMs),
    ];
    const lines =
      status.types.length === 0
        ? ['The outbox is empty.']
        : [
            table([
              ['kind', 'type', 'unsent', 'in flight', 'scheduled', 'parked', 'sent', 'oldest unsent'],
              ...status.types.map((t) => line(t.kind, t.type, t)),
              line('total', '', totals),
            ]),
          ];
    if (totals.parked > 0) {
      const shown = totals.parked > PARKED_SHOWN ? ` (the oldest ${PARKED_SHOWN})` : '';
      lines.push(
        '',
        `${rows(totals.parked)} parked${shown}:`,
        table([
          ['id', 'type', 'attempts', 'last error'],
          ...parked.map((p) => [p.id, p.type, String(p.attempts), oneLine(p.lastError)]),
        ]),
        'Fix the cause, then: usecasecore outbox retry --parked (or retry <id…>)',
      );
    }
    cli.print(lines.join('\n'), { ...status, parked });
    return totals.parked > 0 ? EXIT.problem : EXIT.ok;
  },
};

/**
 * The `outbox retry` command.
 * @example usecasecore outbox retry --parked
 */
export const outboxRetryCommand: Command = {
  name: 'outbox retry',
  summary: 'put parked rows back in line (by id, or all with --parked)',
  usage: '<id…> | --parked [options]',
  help: `Puts parked outbox rows back in line for the relay: their attempts start again from 0; their last error is kept
until the next failure replaces it. Give the ids (\`usecasecore outbox status\` lists the oldest parked rows),
or --parked for every parked row.

Options:
  --parked   retry every parked row

Exit codes: 0 every row given was retried, 1 some id was not parked or does not exist (the others were retried),
2 bad usage.`,
  options: { parked: { type: 'boolean' } },
  positionals: true,
  async run(cli) {
    const ids = [...new Set(cli.positionals)];
    if (cli.flag('parked') === ids.length > 0) {
      throw new UsageError('give the ids of parked rows, or --parked for all of them');
    }
    const outbox = outboxOf(cli);
    if (cli.flag('parked')) {
      const retried = await outbox.retryParked();
      cli.print(`Retried ${rows(retried)}: back in line for the relay`, { retried });
      return EXIT.ok;
    }
    const result = await outbox.retry(ids);
    const { retried } = result;
    const lines = [`Retried ${rows(retried.length)}${retried.length > 0 ? `: ${retried.join(', ')}` : ''}`];
    if (result.notParked.length > 0) lines.push(`Not parked (sent, or still in line): ${result.notParked.join(', ')}`);
    if (result.missing.length > 0) lines.push(`Not found: ${result.missing.join(', ')}`);
    cli.print(lines.join('\n'), result);
    return result.notParked.length + result.missing.length > 0 ? EXIT.problem : EXIT.ok;
  },
};

/**
 * The `outbox purge` command.
 * @example usecasecore outbox purge --sent-before 7d
 */
export const outboxPurgeCommand: Command = {
  name: 'outbox purge',
  summary: 'delete rows sent longer ago than a duration (never unsent or parked ones)',
  usage: '--sent-before <duration> [options]',
  help: `Deletes the outbox rows that were sent longer ago than the duration. Unsent, in-flight and parked rows are
never deleted.

Options:
  --sent-before <duration>   e.g. 7d, 12h, 30m, 45s, 500ms

Exit codes: 0 done, 1 the database failed, 2 bad usage.`,
  options: { 'sent-before': { type: 'string' } },
  async run(cli) {
    const ms = cli.duration('sent-before');
    if (ms === undefined) throw new UsageError('say how long ago rows must have been sent, e.g. --sent-before 7d');
    const deleted = await outboxOf(cli).purgeSent(ms);
    const before = new Date(Date.now() - ms).toISOString();
    cli.print(`Deleted ${rows(deleted)} sent before ${before}`, { deleted, before });
    return EXIT.ok;
  },
};
