// The usecasecore CLI, run as a process against Postgres: help, exit codes, migrate, outbox, inbox, idempotency,
// audit verify and the relay.
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { connect } from 'amqplib';
import type { Knex } from 'knex';
import { assertQueue } from '../../../adapters/amqp/index.js';
import { KnexAuditStore, KnexOutbox, KnexUnitOfWork, tables, type Tables } from '../../../adapters/knex/index.js';
import { UseCaseError } from '../../../lib/core/index.js';
import { chainHash, type AuditEntry } from '../../../lib/audit/index.js';
import { deleteTopology, isolatedTopology, rabbit } from '../../support/broker.js';
import { dropSchema, freshSchema, postgres } from '../../support/db.js';
import { expect } from '../../support/helpers.js';
import { runToEnd } from '../../support/processes.js';

const MAIN = fileURLToPath(new URL('../../../adapters/cli/main.ts', import.meta.url));
const HOUR = 3_600_000,
  DAY = 24 * HOUR;

/** Runs `usecasecore ...args` to its end. */
const cli = (args: readonly string[], env: Record<string, string | undefined> = {}) =>
  runToEnd(MAIN, args, { UCC_SCHEMA: '', UCC_PREFIX: '', ...env });

const COMMANDS = [
  'migrate',
  'relay',
  'outbox status',
  'outbox retry',
  'outbox purge',
  'inbox purge',
  'idempotency reap',
  'audit verify',
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
      ['ids and --parked together', ['outbox', 'retry', 'abc', '--parked'], /give the ids of parked rows, or --parked/],
      ['a stray argument', ['migrate', 'now'], /Unexpected argument 'now'/],
      ['no DATABASE_URL', ['outbox', 'status'], /Set DATABASE_URL or pass --database-url/],
      [
        'a queue type of neither kind',
        ['relay', '--amqp-url', 'amqp://127.0.0.1:1', '--queue-type', 'mirrored'],
        /--queue-type must be quorum or classic \(as amqpModule's queueType\), got mirrored/,
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
    let db: Knex, url: string, schema: string, t: Tables;
    const run = (...args: string[]) => cli([...args, '--schema', schema], { DATABASE_URL: url });
    before(async function () {
      const found = await postgres();
      if (!found) return this.skip();
      db = found;
      url = process.env.DATABASE_URL!;
    });
    afterEach(async () => {
      if (db && schema) await dropSchema(db, schema);
    });

    describe('migrate', () => {
      beforeEach(() => {
        schema = `ucc_cli_${randomUUID().slice(0, 8)}`;
      });
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
          /Applied 8 migrations in schema ucc_cli_\w+: 001_core, 002_\w+, 003_\w+, 004_\w+, 005_\w+, 006_\w+, 007_\w+, 008_jobs/,
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

    describe('with the tables', () => {
      beforeEach(async () => {
        ({ schema } = await freshSchema(db));
        t = tables({ schema });
      });
      const ago = (ms: number) => new Date(Date.now() - ms);
      /** Outbox rows as a relay leaves them: `unsent`, `inFlight` (claimed now), `parked` or `sent` some time ago. */
      type State = 'unsent' | 'inFlight' | 'parked' | number;
      const outboxRow = (id: string, type: string, state: State, occurredMsAgo = HOUR) => ({
        id,
        kind: 'event',
        type,
        payload: '{}',
        headers: '{}',
        occurred_at: ago(occurredMsAgo),
        attempts: state === 'parked' ? 5 : 0,
        last_error: state === 'parked' ? 'unroutable' : null,
        claimed_until: state === 'inFlight' ? Date.now() + 60_000 : null,
        parked_at: state === 'parked' ? ago(HOUR) : null,
        sent_at: typeof state === 'number' ? ago(state) : null,
      });
      const outboxIds = async (): Promise<string[]> => db(t.outbox).orderBy('id').pluck('id');

      it('should count outbox rows per type, aligned and in --json, and exit 1 while a row is parked', async () => {
        await db(t.outbox).insert([
          outboxRow('p-1', 'order.placed', 'unsent', 2 * HOUR),
          outboxRow('p-2', 'order.placed', 'unsent'),
          outboxRow('p-3', 'order.placed', 'inFlight'),
          outboxRow('p-4', 'order.placed', 10 * DAY),
          outboxRow('s-1', 'order.shipped', 'parked'),
          outboxRow('s-2', 'order.shipped', HOUR),
        ]);
        const human = await run('outbox', 'status');
        expect(human.code).to.equal(1);
        expect(human.stdout)
          .to.match(/^kind +type +unsent +in flight +parked +sent +oldest unsent$/m)
          .and.match(/^event +order\.placed +3 +1 +0 +1 +2h$/m)
          .and.match(/^event +order\.shipped +0 +0 +1 +1 +-$/m)
          .and.match(/^total +3 +1 +1 +2 +2h$/m)
          .and.match(/^1 row parked:$/m)
          .and.match(/^s-1 +order\.shipped +5 +unroutable$/m)
          .and.include('usecasecore outbox retry --parked');
        const [header, ...lines] = human.stdout.split('\n').slice(0, 4);
        for (const column of ['unsent', 'in flight', 'parked', 'sent']) {
          const end = header!.indexOf(column) + column.length; // numbers end under their heading's last letter
          for (const line of lines) expect(line.slice(end - 1, end + 1), `${column} in "${line}"`).to.match(/^\d( |$)/);
        }

        const json = await run('outbox', 'status', '--json');
        expect(json.code).to.equal(1);
        const status = JSON.parse(json.stdout);
        expect(status.totals).to.deep.include({ unsent: 3, inFlight: 1, parked: 1, sent: 2 });
        expect(status.totals.oldestUnsentAgeMs).to.be.within(2 * HOUR, 2 * HOUR + 60_000);
        expect(status.types.map((s: { type: string; unsent: number }) => [s.type, s.unsent])).to.deep.equal([
          ['order.placed', 3],
          ['order.shipped', 0],
        ]);
        expect(status.parked).to.have.length(1);
        expect(status.parked[0]).to.include({ id: 's-1', type: 'order.shipped', attempts: 5, lastError: 'unroutable' });
      });

      it('should exit 0 when nothing is parked, and say when the outbox is empty', async () => {
        expect(await run('outbox', 'status')).to.include({ code: 0, stdout: 'The outbox is empty.\n' });
        await db(t.outbox).insert([outboxRow('a', 'x', 'unsent'), outboxRow('b', 'x', DAY)]);
        expect((await run('outbox', 'status')).code).to.equal(0);
      });

      it('should put parked rows back in line by id, and exit 1 naming ids not parked or not found', async () => {
        await db(t.outbox).insert([
          outboxRow('parked-1', 'x', 'parked'),
          outboxRow('parked-2', 'x', 'parked'),
          outboxRow('waiting', 'x', 'unsent'),
          outboxRow('sent', 'x', HOUR),
        ]);
        const one = await run('outbox', 'retry', 'parked-1');
        expect(one).to.include({ code: 0, stdout: 'Retried 1 row: parked-1\n' });
        const row = await db(t.outbox).where({ id: 'parked-1' }).first();
        expect(row).to.include({ parked_at: null, attempts: 0, last_error: 'unroutable' });
        expect(await new KnexOutbox(new KnexUnitOfWork(db), t.outbox).pending()).to.equal(2);

        const mixed = await run('outbox', 'retry', 'parked-2', 'waiting', 'sent', 'nope', '--json');
        expect(mixed.code).to.equal(1);
        expect(JSON.parse(mixed.stdout)).to.deep.equal({
          retried: ['parked-2'],
          notParked: ['waiting', 'sent'],
          missing: ['nope'],
        });
        const again = await run('outbox', 'retry', 'parked-1');
        expect(again.code).to.equal(1);
        expect(again.stdout).to.include('Not parked (sent, or still in line): parked-1');
      });

      it('should retry 70,000 ids at once: one array parameter, not one per id (Postgres takes 65,535)', async () => {
        await db(t.outbox).insert([outboxRow('parked-1', 'x', 'parked'), outboxRow('waiting', 'x', 'unsent')]);
        const ids = ['parked-1', 'waiting', ...Array.from({ length: 70_000 }, (_, i) => `missing-${i}`)];
        const result = await new KnexOutbox(new KnexUnitOfWork(db), t.outbox).retry(ids);
        expect(result.retried).to.deep.equal(['parked-1']);
        expect(result.notParked).to.deep.equal(['waiting']);
        expect(result.missing).to.have.length(70_000);
      });

      it('should put every parked row back in line with --parked', async () => {
        await db(t.outbox).insert([
          outboxRow('a', 'x', 'parked'),
          outboxRow('b', 'y', 'parked'),
          outboxRow('c', 'y', 'unsent'),
        ]);
        expect(await run('outbox', 'retry', '--parked')).to.include({
          code: 0,
          stdout: 'Retried 2 rows: back in line for the relay\n',
        });
        expect(await db(t.outbox).whereNotNull('parked_at').pluck('id')).to.deep.equal([]);
        expect((await run('outbox', 'status')).code, 'nothing parked any more').to.equal(0);
      });

      it('should purge only rows sent before the cut-off: never unsent, in-flight or parked ones', async () => {
        await db(t.outbox).insert([
          outboxRow('sent-old', 'x', 8 * DAY, 9 * DAY),
          outboxRow('sent-young', 'x', 6 * DAY, 9 * DAY),
          outboxRow('unsent-old', 'x', 'unsent', 30 * DAY),
          outboxRow('in-flight-old', 'x', 'inFlight', 30 * DAY),
          outboxRow('parked-old', 'x', 'parked', 30 * DAY),
        ]);
        const purge = await run('outbox', 'purge', '--sent-before', '7d');
        expect(purge.code).to.equal(0);
        expect(purge.stdout).to.match(/^Deleted 1 row sent before \d{4}-\d\d-\d\dT/);
        expect(await outboxIds()).to.deep.equal(['in-flight-old', 'parked-old', 'sent-young', 'unsent-old']);
        const json = await run('outbox', 'purge', '--sent-before', '12h', '--json');
        expect(JSON.parse(json.stdout)).to.include({ deleted: 1 });
        expect(await outboxIds()).to.deep.equal(['in-flight-old', 'parked-old', 'unsent-old']);
      });

      it('should purge inbox records older than --before, and only those', async () => {
        await db(t.inbox).insert([
          { consumer: 'billing', message_id: 'old', processed_at: ago(31 * DAY) },
          { consumer: 'billing', message_id: 'young', processed_at: ago(29 * DAY) },
        ]);
        const purge = await run('inbox', 'purge', '--before', '30d');
        expect(purge.code).to.equal(0);
        expect(purge.stdout).to.match(/^Deleted 1 inbox record processed before /);
        expect(await db(t.inbox).pluck('message_id')).to.deep.equal(['young']);
      });

      it('should reap expired idempotency records and claims left by an older version, and only those', async () => {
        const now = Date.now();
        const record = (key: string, response: string | null, expiresAt: number | null) => ({
          scope: 't',
          key,
          fingerprint: 'f',
          response,
          expires_at: expiresAt,
        });
        await db(t.idempotency).insert([
          record('expired', '{"ok":true}', now - 1_000),
          record('live', '{"ok":true}', now + DAY),
          record('legacy-claim', null, null),
        ]);
        const reap = await run('idempotency', 'reap', '--json');
        expect(reap.code).to.equal(0);
        expect(JSON.parse(reap.stdout)).to.deep.equal({ deleted: 2 });
        expect(await db(t.idempotency).pluck('key')).to.deep.equal(['live']);
      });

      describe('audit verify', () => {
        let records: Array<{ id: string; seq: number; hash: string }>;
        const entry = (tenant: string, n: number): AuditEntry => ({
          id: `${tenant}-${n}-${randomUUID().slice(0, 8)}`,
          at: new Date().toISOString(),
          tenant,
          actor: 'alice',
          type: 'MoveInventory',
          requestId: `r-${n}`,
          outcome: 'ok',
          payload: { sku: 'A-1', quantity: n },
        });
        beforeEach(async () => {
          const store = new KnexAuditStore(new KnexUnitOfWork(db), t.audit, t.auditHeads);
          for (let n = 1; n <= 3; n++) await store.append(entry('acme', n));
          for (let n = 1; n <= 2; n++) await store.append(entry('globex', n));
          expect(await store.seal()).to.equal(5);
          records = await store.list({ tenant: 'acme', order: 'asc' });
        });
        const verify = async (...args: string[]) => {
          const { code, stdout } = await run('audit', 'verify', '--json', ...args);
          return { code, result: JSON.parse(stdout) };
        };

        it('should exit 0 when every chain is intact', async () => {
          const human = await run('audit', 'verify');
          expect(human).to.include({ code: 0, stdout: 'Audit chains intact: 5 records of 2 tenants\n' });
          expect(await verify('--tenant', 'globex')).to.deep.equal({
            code: 0,
            result: { ok: true, tenants: 1, records: 2, pending: 0, problems: [] },
          });
        });

        it('should count records not sealed yet as pending, never as a break', async () => {
          const store = new KnexAuditStore(new KnexUnitOfWork(db), t.audit, t.auditHeads);
          await store.append(entry('acme', 4));
          await store.append(entry('initech', 1));
          const human = await run('audit', 'verify');
          expect(human).to.include({
            code: 0,
            stdout: 'Audit chains intact: 5 records of 3 tenants (2 not sealed yet, not checked)\n',
          });
          expect(await verify('--tenant', 'initech')).to.deep.equal({
            code: 0,
            result: { ok: true, tenants: 1, records: 0, pending: 1, problems: [] },
          });
          await store.seal();
          expect(await verify()).to.deep.include({ code: 0 });
          expect((await verify()).result).to.include({ records: 7, pending: 0 });
        });

        it('should exit 1 naming the tenant, seq and id of an edited record', async () => {
          await db(t.audit)
            .where({ tenant: 'acme', seq: 2 })
            .update({ payload: JSON.stringify({ sku: 'A-1', quantity: 200 }) });
          const human = await run('audit', 'verify');
          expect(human.code).to.equal(1);
          expect(human.stdout)
            .to.match(/^Audit chain broken in 1 tenant:$/m)
            .and.match(
              new RegExp(`^acme +2 +${records[1]!.id} +hash does not match the record \\(it was edited\\)$`, 'm'),
            );
          expect((await verify()).result.problems).to.deep.equal([
            { tenant: 'acme', seq: 2, id: records[1]!.id, reason: 'hash does not match the record (it was edited)' },
          ]);
          expect((await verify('--tenant', 'globex')).code, 'the other tenant is intact').to.equal(0);
        });

        it('should exit 1 naming the record after a deleted middle record', async () => {
          await db(t.audit).where({ tenant: 'acme', seq: 2 }).delete();
          const { code, result } = await verify();
          expect(code).to.equal(1);
          expect(result.problems).to.deep.equal([
            {
              tenant: 'acme',
              seq: 3,
              id: records[2]!.id,
              reason: 'seq 2 is missing (a record was removed or reordered)',
            },
          ]);
        });

        it("should exit 1 when the last record was deleted, from the tenant's head row", async () => {
          await db(t.audit).where({ tenant: 'acme', seq: 3 }).delete();
          const { code, result } = await verify('--tenant', 'acme');
          expect(code).to.equal(1);
          expect(result.problems).to.deep.equal([
            {
              tenant: 'acme',
              seq: 2,
              id: records[1]!.id,
              reason: 'the head is at seq 3: the records after this one were deleted',
            },
          ]);
        });

        it('should exit 1 for a --tenant with neither records nor a head row, not report it intact', async () => {
          const human = await run('audit', 'verify', '--tenant', 'ACME');
          expect(human.code).to.equal(1);
          expect(human.stdout).to.match(/^No audit records or head for tenant "ACME" — check the name/);
          const { code, result } = await verify('--tenant', 'nobody');
          expect(code).to.equal(1);
          expect(result).to.deep.include({ ok: false, records: 0 });
          expect(result.problems).to.deep.equal([
            { tenant: 'nobody', seq: 0, id: null, reason: 'no audit records or head for tenant "nobody"' },
          ]);
        });

        it('should never report a break while another process appends and seals, and still catch tampering', async () => {
          const store = new KnexAuditStore(new KnexUnitOfWork(db), t.audit, t.auditHeads);
          let writing = true,
            appended = 0;
          const writer = (async () => {
            for (let n = 4; writing; n++, appended++) {
              await Promise.all([store.append(entry('acme', n)), store.append(entry(`new-${n % 5}`, n))]);
            }
          })();
          const sealer = (async () => {
            while (writing) {
              await store.seal();
              await new Promise((resolve) => setTimeout(resolve, 10));
            }
          })();
          const reports = [];
          try {
            for (const until = Date.now() + 1_500; Date.now() < until;) {
              reports.push(await store.verify({ pageSize: 2 }), await store.verify({ tenant: 'acme', pageSize: 2 }));
            }
          } finally {
            writing = false;
            await Promise.all([writer, sealer]);
          }
          expect(appended, 'the writer kept appending').to.be.above(20);
          expect(reports.flatMap((report) => report.problems)).to.deep.equal([]);
          expect(
            reports.map((report) => report.records),
            'the sealer kept sealing',
          ).to.satisfy((counts: number[]) => new Set(counts).size > 2);
          await store.seal();
          await db(t.audit).where({ tenant: 'acme', seq: 2 }).update({ actor: 'mallory' });
          expect((await store.verify({ pageSize: 2 })).problems).to.deep.equal([
            { tenant: 'acme', seq: 2, id: records[1]!.id, reason: 'hash does not match the record (it was edited)' },
          ]);
        });

        it('should refuse a pageSize that is not a whole number ≥ 1 (0 would never end)', async () => {
          const store = new KnexAuditStore(new KnexUnitOfWork(db), t.audit, t.auditHeads);
          for (const pageSize of [0, -1, 1.5, Number.NaN]) {
            await expect(store.verify({ pageSize }), String(pageSize)).to.be.rejectedWith(UseCaseError, /pageSize/);
          }
          expect((await store.verify({ pageSize: 1 })).records).to.equal(5);
        });

        it('should exit 1 naming an inserted record, even one whose hash was forged to fit the chain', async () => {
          const forged = { ...entry('acme', 4), seq: 4 };
          const last = records[2]!;
          await db(t.audit).insert({
            tenant: 'acme',
            seq: 4,
            id: forged.id,
            at: forged.at,
            actor: forged.actor,
            type: forged.type,
            request_id: forged.requestId,
            outcome: forged.outcome,
            payload: JSON.stringify(forged.payload),
            prev_hash: last.hash,
            hash: chainHash(last.hash, 4, forged),
          });
          const { code, result } = await verify();
          expect(code).to.equal(1);
          expect(result.problems).to.deep.equal([
            { tenant: 'acme', seq: 4, id: forged.id, reason: 'the head is at seq 3: this record was inserted' },
          ]);
        });
      });

      describe('relay', () => {
        let amqpUrl: string;
        before(async function () {
          const found = await rabbit();
          if (!found) return this.skip();
          amqpUrl = found;
        });

        /** `usecasecore relay …` as a long-running child: its output so far, its first line, and its exit. */
        const startRelay = (args: readonly string[], env: Record<string, string> = {}) => {
          const child = spawn(process.execPath, ['--import', 'tsx', MAIN, 'relay', '--schema', schema, ...args], {
            env: { ...process.env, DATABASE_URL: url, AMQP_URL: amqpUrl, ...env },
            stdio: ['ignore', 'pipe', 'pipe'],
          });
          const output = { stdout: '', stderr: '' };
          const started = new Promise<void>((resolve) => {
            child.stdout.on('data', (chunk: Buffer) => {
              output.stdout += chunk;
              if (output.stdout.includes('\n')) resolve();
            });
          });
          child.stderr.on('data', (chunk: Buffer) => {
            output.stderr += chunk;
          });
          const exited = once(child, 'exit') as Promise<[number | null, string | null]>;
          /** Resolves once the start line is out (its signal handlers are in place), rejects if it exits first. */
          const running = Promise.race([
            started,
            exited.then(([code]) => {
              throw new Error(`the relay exited (${code}) by itself: ${output.stderr}`);
            }),
          ]);
          running.catch(() => undefined); // observed by the case; after a signal an exit is expected
          return { child, output, running, exited };
        };
        const pinged = (id = randomUUID()) => ({
          id,
          kind: 'event' as const,
          type: 'spec.cli.pinged',
          payload: { n: 1 },
          occurredAt: new Date().toISOString(),
          headers: {},
        });

        it('should relay a committed row to RabbitMQ, and exit 0 on SIGTERM', async () => {
          const topology = isolatedTopology(),
            queue = topology.queue('cli');
          const model = await connect(amqpUrl);
          try {
            const channel = await model.createChannel();
            await assertQueue(channel, topology.exchanges, queue, [{ kind: 'event', type: 'spec.cli.pinged' }]);
            const delivered = new Promise<string>((resolve) => {
              void channel.consume(
                queue,
                (msg) => {
                  if (msg) resolve(String(msg.properties.messageId));
                },
                { noAck: true },
              );
            });
            const id = randomUUID();
            await new KnexOutbox(new KnexUnitOfWork(db), t.outbox).add([pinged(id)]);
            const audit = new KnexAuditStore(new KnexUnitOfWork(db), t.audit, t.auditHeads);
            await audit.append({
              id,
              at: new Date().toISOString(),
              tenant: 'acme',
              actor: null,
              type: 'Ping',
              requestId: id,
              outcome: 'ok',
              payload: {},
            });
            const relay = startRelay([
              '--exchanges',
              topology.prefix,
              '--poll',
              '50ms',
              '--purge-sent-after',
              '7d',
              '--reap-idempotency',
              '--purge-jobs-after',
              '30d',
            ]);
            try {
              await relay.running;
              expect(await Promise.race([delivered, relay.running.then(() => relay.exited)])).to.equal(id);
              for (const until = Date.now() + 2_000; Date.now() < until;) {
                if ((await audit.list({ tenant: 'acme' })).length > 0) break;
                await new Promise((resolve) => setTimeout(resolve, 20));
              }
              expect(await audit.list({ tenant: 'acme' }), 'the relay sealed the audit record').to.have.length(1);
            } finally {
              await Promise.race([relay.running, relay.exited]).catch(() => undefined);
              relay.child.kill('SIGTERM');
            }
            expect(await relay.exited, relay.output.stderr).to.deep.equal([0, null]);
            expect(relay.output.stdout.split('\n')[0]).to.equal(
              `usecasecore relay: ${schema}.ucc_outbox → ${topology.prefix}.events at ` +
                `${amqpUrl.replace(/\/\/[^@/]*@/, '//')}, polling every 50ms, sealing ${schema}.ucc_audit every 200ms, ` +
                'retention every 1h: sent rows kept 7d, idempotency reaped, settled jobs kept 30d',
            );
            expect(relay.output.stdout).to.include('SIGTERM, stopped');
            expect(await db(t.outbox).where({ id }).whereNotNull('sent_at').pluck('id')).to.deep.equal([id]);
          } finally {
            await model.close();
            await deleteTopology(amqpUrl, topology.exchanges, [queue]);
          }
        });

        it('should exit 1 with the reason and the fix, and never say it started, when the broker is unreachable', async () => {
          const relay = startRelay(['--amqp-url', 'amqp://guest:secret@127.0.0.1:1']);
          const [code] = await relay.exited;
          expect(code).to.equal(1);
          expect(relay.output.stdout, 'no start line').to.equal('');
          expect(relay.output.stderr)
            .to.match(/cannot connect to RabbitMQ at amqp:\/\/127\.0\.0\.1:1 \(.*ECONNREFUSED.*\)/)
            .and.include('check --amqp-url or AMQP_URL')
            .and.not.include('secret');
        });

        it('should log failing publishes on stderr once, not once per retry, and keep the rows', async () => {
          // An events exchange of the wrong type: every publish fails as the bus declares its exchanges.
          const topology = isolatedTopology();
          const model = await connect(amqpUrl);
          try {
            const channel = await model.createChannel();
            await channel.assertExchange(topology.exchanges.events, 'fanout', { durable: false, autoDelete: false });
            const id = randomUUID();
            await new KnexOutbox(new KnexUnitOfWork(db), t.outbox).add([pinged(id)]);
            const relay = startRelay(['--exchanges', topology.prefix, '--poll', '20ms']);
            await relay.running;
            const deadline = Date.now() + 10_000;
            while (!relay.output.stderr.includes('publishing failed') && Date.now() < deadline) {
              await new Promise((resolve) => setTimeout(resolve, 20));
            }
            await new Promise((resolve) => setTimeout(resolve, 1_000)); // the relay retries several times meanwhile
            relay.child.kill('SIGTERM');
            expect(await relay.exited, relay.output.stderr).to.deep.equal([0, null]);
            const failures = relay.output.stderr.split('\n').filter((line) => line.includes('publishing failed'));
            expect(failures, relay.output.stderr).to.have.length(1);
            expect(failures[0]).to.match(/PRECONDITION_FAILED|inequivalent arg 'type'/);
            expect(await db(t.outbox).where({ id }).whereNull('sent_at').pluck('id'), 'still unsent').to.deep.equal([
              id,
            ]);
          } finally {
            await model.close();
            await deleteTopology(amqpUrl, topology.exchanges, []);
          }
        });

        it('should exit 1 at once on a second signal', async () => {
          const relay = startRelay(['--poll', '50ms']);
          await relay.running;
          relay.child.kill('SIGTERM');
          relay.child.kill('SIGINT');
          const [code] = await relay.exited;
          expect(code, relay.output.stderr).to.equal(1);
          expect(relay.output.stderr).to.match(/SIG(INT|TERM) again, exiting now/);
        });
      });
    });
  });
});
