// `usecasecore inbox purge --before <duration>`: forgets old inbox records.
import { KnexInbox } from '../knex/inbox.js';
import { KnexUnitOfWork } from '../knex/unit-of-work.js';
import { EXIT, UsageError, type Command } from './common.js';

/**
 * The `inbox purge` command.
 * @example usecasecore inbox purge --before 30d
 */
export const inboxPurgeCommand: Command = {
  name: 'inbox purge',
  summary: 'forget inbox records older than a duration',
  usage: '--before <duration> [options]',
  help: `Deletes the inbox records (which message each consumer processed) made longer ago than the duration. Keep
them longer than the broker may redeliver a message: a duplicate of a forgotten message takes effect again.

Options:
  --before <duration>   e.g. 30d, 12h, 30m, 45s, 500ms

Exit codes: 0 done, 1 the database failed, 2 bad usage.`,
  options: { before: { type: 'string' } },
  async run(cli) {
    const ms = cli.duration('before');
    if (ms === undefined) throw new UsageError('say how old a record must be to go, e.g. --before 30d');
    const deleted = await new KnexInbox(new KnexUnitOfWork(cli.db()), cli.tables.inbox).purge(ms);
    const before = new Date(Date.now() - ms).toISOString();
    cli.print(`Deleted ${deleted} inbox record${deleted === 1 ? '' : 's'} processed before ${before}`, {
      deleted,
      before,
    });
    return EXIT.ok;
  },
};
