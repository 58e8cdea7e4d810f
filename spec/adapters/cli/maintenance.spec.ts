// The usecasecore CLI on Postgres: outbox status, retry and purge, inbox purge and idempotency reap.
import { KnexOutbox, KnexUnitOfWork } from '../../../adapters/knex/index.js';
import { expect } from '../../support/helpers.js';
import { db, run, t, usePostgres, useTables } from './support.js';

const HOUR = 3_600_000,
  DAY = 24 * HOUR;

describe('usecasecore CLI', function () {
  this.timeout(30_000);

  describe('on Postgres', () => {
    usePostgres();

    describe('with the tables', () => {
      useTables();
      const ago = (ms: number) => new Date(Date.now() - ms);
      /** Outbox rows as a relay leaves them: `unsent`, `inFlight` (claimed now), `scheduled` (due in a day),
       * `parked` or `sent` some time ago. */
      type State = 'unsent' | 'inFlight' | 'scheduled' | 'parked' | number;
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
        available_at: state === 'scheduled' ? ago(-DAY) : null,
      });
      const outboxIds = async (): Promise<string[]> => db(t.outbox).orderBy('id').pluck('id');

      it('should count outbox rows per type, aligned and in --json, and exit 1 while a row is parked', async () => {
        await db(t.outbox).insert([
          outboxRow('p-1', 'order.placed', 'unsent', 2 * HOUR),
          outboxRow('p-2', 'order.placed', 'unsent'),
          outboxRow('p-3', 'order.placed', 'inFlight'),
          outboxRow('p-4', 'order.placed', 10 * DAY),
          outboxRow('p-5', 'order.placed', 'scheduled', 3 * HOUR), // older, but not due: neither backlog nor age
          outboxRow('s-1', 'order.shipped', 'parked'),
          outboxRow('s-2', 'order.shipped', HOUR),
        ]);
        const human = await run('outbox', 'status');
        expect(human.code).to.equal(1);
        expect(human.stdout)
          .to.match(/^kind +type +unsent +in flight +scheduled +parked +sent +oldest unsent$/m)
          .and.match(/^event +order\.placed +3 +1 +1 +0 +1 +2h$/m)
          .and.match(/^event +order\.shipped +0 +0 +0 +1 +1 +-$/m)
          .and.match(/^total +3 +1 +1 +1 +2 +2h$/m)
          .and.match(/^1 row parked:$/m)
          .and.match(/^s-1 +order\.shipped +5 +unroutable$/m)
          .and.include('usecasecore outbox retry --parked');
        const [header, ...lines] = human.stdout.split('\n').slice(0, 4);
        for (const column of ['unsent', 'in flight', 'scheduled', 'parked', 'sent']) {
          const end = header!.indexOf(column) + column.length; // numbers end under their heading's last letter
          for (const line of lines) expect(line.slice(end - 1, end + 1), `${column} in "${line}"`).to.match(/^\d( |$)/);
        }

        const json = await run('outbox', 'status', '--json');
        expect(json.code).to.equal(1);
        const status = JSON.parse(json.stdout);
        expect(status.totals).to.deep.include({ unsent: 3, inFlight: 1, scheduled: 1, parked: 1, sent: 2 });
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
    });
  });
});
