// `usecasecore idempotency reap`: deletes expired idempotency records.
import { KnexIdempotencyStore } from '../knex/idempotency-store.js';
import { KnexUnitOfWork } from '../knex/unit-of-work.js';
import { EXIT, type Command } from './common.js';

/**
 * The `idempotency reap` command.
 * @example usecasecore idempotency reap --json
 */
export const idempotencyReapCommand: Command = {
  name: 'idempotency reap',
  summary: 'delete expired idempotency records',
  usage: '[options]',
  help: `Deletes idempotency records whose TTL has passed (and claims an older version committed without a result).
Live records are kept; a claim in flight is never seen (it commits with its result or vanishes).

Exit codes: 0 done, 1 the database failed, 2 bad usage.`,
  async run(cli) {
    const deleted = await new KnexIdempotencyStore(new KnexUnitOfWork(cli.db()), cli.tables.idempotency).reap();
    cli.print(`Deleted ${deleted} expired idempotency record${deleted === 1 ? '' : 's'}`, { deleted });
    return EXIT.ok;
  },
};
