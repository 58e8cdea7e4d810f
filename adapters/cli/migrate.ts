// `usecasecore migrate [--dry-run]`: creates or upgrades the library's tables, or prints the SQL it would run.
import { migrate, pendingMigrations } from '../knex/migrations.js';
import { EXIT, type Command } from './common.js';

/**
 * The `migrate` command.
 * @example usecasecore migrate --schema app --dry-run
 */
export const migrateCommand: Command = {
  name: 'migrate',
  summary: "create or upgrade the library's tables (--dry-run prints the SQL)",
  usage: '[--dry-run] [options]',
  help: `Creates the library's tables (idempotency, audit, audit heads, outbox, inbox, jobs, processes with their steps
and waits), or applies the migrations an existing database lacks. Safe to run from several processes at once; a
second run is a no-op.

Options:
  --dry-run   print the SQL of the migrations not yet applied, and change nothing (not even the migrations table)

Exit codes: 0 done (or nothing to do), 1 the database failed, 2 bad usage.`,
  options: { 'dry-run': { type: 'boolean' } },
  async run(cli) {
    const db = cli.db();
    const pending = await pendingMigrations(db, cli.tableOptions);
    const where = cli.tableOptions.schema ? `schema ${cli.tableOptions.schema}` : 'the search path';
    if (cli.flag('dry-run')) {
      const sql = pending.map((m) => `-- ${m.name}\n${m.sql.map((statement) => `${statement};`).join('\n')}`);
      cli.print(
        pending.length === 0 ? `-- nothing to apply: the tables in ${where} are up to date` : sql.join('\n\n'),
        { dryRun: true, pending },
      );
      return EXIT.ok;
    }
    await migrate(db, cli.tableOptions);
    const applied = pending.map((m) => m.name).filter((name) => name !== 'create_schema');
    cli.print(
      applied.length === 0
        ? `Up to date: nothing to apply in ${where}`
        : `Applied ${applied.length} migration${applied.length === 1 ? '' : 's'} in ${where}: ${applied.join(', ')}`,
      { applied, tables: cli.tables },
    );
    return EXIT.ok;
  },
};
