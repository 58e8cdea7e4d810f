// The usecasecore CLI, run as a process: help, exit codes and bad usage, and migrate on Postgres.
import { expect } from '../../support/helpers.js';
import { cli, db, run, schema, url, useNewSchemaName, usePostgres } from './support.js';

const COMMANDS = [
  'migrate',
  'relay',
  'outbox status',
  'outbox retry',
  'outbox purge',
  'inbox purge',
  'idempotency reap',
  'audit verify',
  'processes list',
  'processes show',
  'processes retry',
  'processes cancel',
  'jobs list',
  'jobs show',
  'jobs cancel',
  'jobs purge',
];

describe('usecasecore CLI', function () {
  this.timeout(30_000);

  describe('usage', () => {
    it('should list every command with --help, and exit 0', async () => {
      const { code, stdout } = await cli(['--help']);
      expect(code).to.equal(0);
      for (const command of COMMANDS) expect(stdout).to.match(new RegExp(`^  ${command} +\\S`, 'm'));
      expect(stdout).to.include('--database-url').and.include('Exit codes');
    });

    it("should print each command's own help, and exit 0", async () => {
      const runs = await Promise.all(COMMANDS.map((command) => cli([...command.split(' '), '--help'])));
      for (const [i, { code, stdout }] of runs.entries()) {
        expect(code, COMMANDS[i]).to.equal(0);
        expect(stdout, COMMANDS[i])
          .to.match(new RegExp(`^Usage: usecasecore ${COMMANDS[i]} `))
          .and.include('--schema');
      }
      expect(runs[2]!.stdout, 'outbox status says when it exits 1').to.match(/1 some row is parked/);
    });

    const misuses: Array<[string, string[], RegExp]> = [
      ['no command', [], /which command\?/],
      ['an unknown command', ['vacuum'], /unknown command "vacuum" — use one of: migrate, relay/],
      ['an unknown subcommand', ['outbox', 'flush'], /unknown command "outbox flush" — use one of: outbox status/],
      ['an unknown option', ['outbox', 'status', '--verbose'], /Unknown option '--verbose'/],
      [
        'a duration in another form',
        ['outbox', 'purge', '--sent-before', '7 days'],
        /"7 days" is not a duration — use a whole number and a unit: 500ms, 45s, 30m, 12h or 7d/,
      ],
      ['a duration without a unit', ['inbox', 'purge', '--before', '30'], /500ms, 45s, 30m, 12h or 7d/],
      ['a missing --sent-before', ['outbox', 'purge'], /e\.g\. --sent-before 7d/],
      [
        'a job state that does not exist',
        ['jobs', 'list', '--state', 'stuck'],
        /--state stuck: use one or more of queued/,
      ],
      ['ids and --parked together', ['outbox', 'retry', 'abc', '--parked'], /give the ids of parked rows, or --parked/],
      ['a stray argument', ['migrate', 'now'], /Unexpected argument 'now'/],
      ['no DATABASE_URL', ['outbox', 'status'], /Set DATABASE_URL or pass --database-url/],
      [
        'a queue type of neither kind',
        ['relay', '--amqp-url', 'amqp://127.0.0.1:1', '--queue-type', 'mirrored'],
        /--queue-type must be quorum or classic \(as amqpModule's queueType\), got mirrored/,
      ],
      [
        'a delivery limit below 1',
        ['relay', '--amqp-url', 'amqp://127.0.0.1:1', '--delivery-limit', '0'],
        /--delivery-limit must be a whole number ≥ 1 \(as amqpModule's deliveryLimit\), got 0/,
      ],
    ];
    it('should exit 2 with the fix and a usage line on stderr for bad usage', async () => {
      const runs = await Promise.all(misuses.map(([, args]) => cli(args, { DATABASE_URL: '' })));
      for (const [i, { code, stdout, stderr }] of runs.entries()) {
        const [what, , message] = misuses[i]!;
        expect(code, what).to.equal(2);
        expect(stderr, what)
          .to.match(message)
          .and.match(/Usage: usecasecore /);
        expect(stdout, what).to.equal('');
      }
    });
  });

  describe('on Postgres', () => {
    usePostgres();

    describe('migrate', () => {
      useNewSchemaName();
      const tablesIn = async (name: string) =>
        (await db('information_schema.tables').where({ table_schema: name }).pluck('table_name')).sort();

      it('should print the SQL of every migration with --dry-run, and create nothing', async () => {
        const { code, stdout } = await run('migrate', '--dry-run');
        expect(code).to.equal(0);
        expect(stdout)
          .to.include(`create schema if not exists "${schema}";`)
          .and.include(`create table "${schema}"."ucc_outbox"`)
          .and.include('-- 003_outbox_unsent_by_aggregate')
          .and.include('-- 004_retention_indexes')
          .and.include('-- 005_audit_sealed_after_commit')
          .and.include('-- 006_idempotency_claim_in_transaction')
          .and.include(`-- 007_audit_reason\nALTER TABLE "${schema}"."ucc_audit" ADD COLUMN reason text;`)
          .and.include(`CREATE INDEX "ucc_audit_unsealed" ON "${schema}"."ucc_audit" (position) WHERE seq IS NULL`)
          .and.include(`CREATE INDEX IF NOT EXISTS "ucc_outbox_sent_at" ON "${schema}"."ucc_outbox" (sent_at)`);
        expect(await db('information_schema.schemata').where({ schema_name: schema })).to.deep.equal([]);
        expect(await tablesIn(schema)).to.deep.equal([]);
      });

      it('should create the tables (with --database-url and --prefix), and do nothing on a second run', async () => {
        const args = ['migrate', '--database-url', url, '--prefix', 'cli_', '--schema', schema];
        const first = await cli(args, { DATABASE_URL: '' });
        expect(first.code, first.stderr).to.equal(0);
        expect(first.stdout).to.match(
          /Applied 11 migrations in schema ucc_cli_\w+: 001_core, 002_\w+, 003_\w+, 004_\w+, 005_\w+, 006_\w+, 007_\w+, 008_jobs, 009_processes, 010_\w+, 011_outbox_scheduled_apart/,
        );
        expect(await tablesIn(schema)).to.deep.equal([
          'cli_audit',
          'cli_audit_heads',
          'cli_idempotency',
          'cli_inbox',
          'cli_jobs',
          'cli_migrations',
          'cli_migrations_lock',
          'cli_outbox',
          'cli_process_steps',
          'cli_process_waits',
          'cli_processes',
        ]);
        expect(
          (await db('pg_indexes').where({ schemaname: schema }).pluck('indexname')).filter((n) =>
            /_(at|until)$/.test(n),
          ),
          'the indexes retention deletes by',
        ).to.have.members([
          'cli_outbox_sent_at',
          'cli_inbox_processed_at',
          'cli_idempotency_expires_at',
          'cli_jobs_settled_at',
          'cli_processes_ended_at',
          'cli_process_waits_arrived_at',
        ]);
        const second = await cli([...args, '--json'], { DATABASE_URL: '' });
        expect(second.code).to.equal(0);
        expect(JSON.parse(second.stdout)).to.deep.include({ applied: [] });
        const dry = await cli([...args, '--dry-run', '--json'], { DATABASE_URL: '' });
        expect(JSON.parse(dry.stdout)).to.deep.equal({ dryRun: true, pending: [] });
      });

      it('should exit 1 saying to run migrate when the tables are missing', async () => {
        const { code, stderr } = await run('outbox', 'status');
        expect(code).to.equal(1);
        expect(stderr).to.match(/does not exist — the library's tables are missing: run `usecasecore migrate`/);
      });
    });
  });
});
