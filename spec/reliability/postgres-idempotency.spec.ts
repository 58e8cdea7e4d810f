// RELIABILITY.md scenarios 10, 11 and 13 on Postgres: idempotency keys past their TTL, raced by the reaper, or bad.
import { randomUUID } from 'node:crypto';
import { Container, inject, injectable } from 'inversify';
import * as v from 'valibot';
import { KnexIdempotencyStore, KnexUnitOfWork, knexModule, tables } from '../../adapters/knex/index.js';
import { memoryBusModule } from '../../adapters/memory/index.js';
import { ManualClock } from '../../lib/testing/index.js';
import {
  Command,
  createMediator,
  handles,
  ok,
  withRules,
  type Claim,
  type Context,
  type Handler,
  type Result,
} from '../../lib/core/index.js';
import { retention } from '../../lib/ops/index.js';
import { audit, everyone, idempotency, policy, unitOfWork, validation } from '../../middleware/index.js';
import { expect } from '../support/helpers.js';
import {
  admin,
  audited,
  bins,
  carries,
  clerk,
  keyRows,
  move,
  named,
  q,
  sample,
  schema,
  stock,
  terminator,
  waitUntil,
  wire,
  usePostgresWorld,
} from './postgres-world.js';

describe('RELIABILITY scenarios on Postgres, RabbitMQ and processes', function () {
  this.timeout(60_000);
  usePostgresWorld();

  describe('10 · TTL and the reaper', () => {
    class Book extends Command(v.object({ ref: v.string(), amount: v.number() }))<{ booking: number }> {}

    /** Books a row that references its idempotency record (FK ON DELETE SET NULL), as an app may. */
    @handles(Book)
    @injectable()
    class BookHandler implements Handler<Book> {
      constructor(@inject(KnexUnitOfWork) private readonly uow: KnexUnitOfWork) {}
      async handle(cmd: Book, ctx: Context<Book>) {
        const db = await this.uow.db();
        const key = ctx.meta.idempotencyKey;
        // The record's scope as idempotency() makes it (tenant and actor): the claim inserted it in this transaction.
        const scope = key === undefined ? null : `${ctx.meta.tenant}\u001f${ctx.meta.actor?.id ?? ''}`;
        const [row] = await db('scn_bookings')
          .insert({ ref: cmd.ref, amount: cmd.amount, idem_scope: scope, idem_key: key ?? null })
          .returning('id');
        return ok({ booking: Number(row.id) });
      }
    }

    before(async () => {
      await admin.schema.withSchema(schema).createTable('scn_bookings', (table) => {
        table.increments('id');
        table.text('ref').notNullable();
        table.integer('amount').notNullable();
        table.text('idem_scope');
        table.text('idem_key');
        table
          .foreign(['idem_scope', 'idem_key'])
          .references(['scope', 'key'])
          .inTable(`${schema}.ucc_idempotency`)
          .onDelete('SET NULL');
      });
    });

    it('should run a key anew past its TTL; the reaper deletes it, business rows stay (SET NULL)', async () => {
      const clock = new ManualClock(Date.now());
      const db = named('scn10');
      const container = new Container();
      container.load(knexModule({ knex: db, clock }), memoryBusModule());
      const mediator = createMediator(container, {
        handlers: [BookHandler],
        middleware: [validation(), unitOfWork(), audit(), idempotency({ ttlMs: 60_000 }), policy([everyone(Book)])],
      });
      const ref = `r10-${randomUUID()}`,
        key = `k10-${randomUUID()}`;
      const send = () => mediator.send(Book.from({ ref, amount: 5 }), { actor: { id: 'ann' }, idempotencyKey: key });
      const bookings = async () =>
        (await q(`SELECT id, idem_key FROM "$schema".scn_bookings WHERE ref = ? ORDER BY id`, [ref])).map((r) => [
          Number(r.id),
          r.idem_key,
        ]);

      const first = await send();
      clock.advance(59_999);
      expect(await send(), 'within the TTL: a replay').to.deep.equal({ ...first, replayed: true });
      clock.advance(2);
      const second = await send();
      expect([second.ok, second.replayed], 'past the TTL: it runs anew').to.deep.equal([true, undefined]);
      const [one, two] = [first, second].map((r) => (r.ok ? r.value.booking : NaN));
      expect(await bookings()).to.deep.equal([
        [one, key],
        [two, key],
      ]);

      clock.advance(60_001);
      const cleanup = retention(container, { idempotency: true });
      try {
        expect((await cleanup.runOnce()).idempotency).to.be.at.least(1);
      } finally {
        await cleanup.stop();
      }
      expect(await keyRows(key), 'the reaper deleted the record').to.equal(0);
      expect(await bookings(), 'the bookings survive, their reference set to NULL').to.deep.equal([
        [one, null],
        [two, null],
      ]);
      const third = await send();
      expect([third.ok, third.replayed], 'a reaped key is a new request').to.deep.equal([true, undefined]);
      expect(await bookings()).to.have.length(3);
    });
  });

  describe('11 · a race with the reaper', () => {
    let t0: number, claimer: KnexUnitOfWork, store: KnexIdempotencyStore;
    const table = tables().idempotency;
    const id = () => ({ scope: 'scn11\u001fann', key: `k11-${randomUUID()}` });
    /** Claims in a transaction of its own; `then` runs in it after the claim; commits. */
    const claimIn = async (key: { scope: string; key: string }, fingerprint: string, then?: () => Promise<void>) => {
      let claim!: Claim;
      await claimer.transaction(
        async () => {
          claim = await store.claim(key, fingerprint, 2_000);
          await then?.();
        },
        () => true,
      );
      return claim;
    };
    const completed = (key: { scope: string; key: string }, fingerprint: string, response: Result<unknown, string>) =>
      claimIn(key, fingerprint, () => store.complete(key, fingerprint, response, 10_000));
    /** The key's row as the claiming transaction sees it. */
    const ownRow = async (key: { scope: string; key: string }) =>
      (
        await (
          await claimer.db()
        ).raw('SELECT fingerprint, response FROM ?? WHERE scope = ? AND key = ?', [table, key.scope, key.key])
      ).rows as Array<{ fingerprint: string; response: string | null }>;

    beforeEach(() => {
      t0 = Date.now();
      claimer = new KnexUnitOfWork(named('scn11-claimer'));
      store = new KnexIdempotencyStore(claimer, table, new ManualClock(t0));
    });

    it('should make the reaper wait on the row the claim locked, so the claim replays it', async () => {
      const key = id();
      expect(await completed(key, 'fp', ok(1))).to.deep.equal({ status: 'claimed' });
      // The reaper's clock is past the record's expiry, the claimer's is not: the claim finds the key taken.
      const app = `scn11-reaper-${randomUUID().slice(0, 8)}`;
      const reaper = new KnexIdempotencyStore(new KnexUnitOfWork(named(app)), table, new ManualClock(t0 + 20_000));
      let reaping: Promise<number> | undefined;
      wire.afterClaim = async () => {
        reaping = reaper.reap();
        await waitUntil(
          async () =>
            (await q(`SELECT wait_event_type FROM pg_stat_activity WHERE application_name = ?`, [app]))[0]
              ?.wait_event_type === 'Lock',
          'the reaper waits on the row lock the claim took',
        );
      };
      expect(await claimIn(key, 'fp')).to.deep.equal({ status: 'completed', fingerprint: 'fp', response: ok(1) });
      expect(reaping, 'the reaper ran between the claim and its read').not.to.equal(undefined);
      expect(await reaping).to.be.at.least(1);
      expect(await keyRows(key.key), 'reaped once the claim ended').to.equal(0);
      let fresh: Awaited<ReturnType<typeof ownRow>> = [];
      expect(
        await claimIn(key, 'fp-2', async () => {
          fresh = await ownRow(key);
        }),
      ).to.deep.equal({ status: 'claimed' });
      expect(fresh, 'a fresh claim holds a row').to.deep.equal([{ fingerprint: 'fp-2', response: null }]);
    });

    it('should claim again when the record vanishes before the read, holding a row of its own', async () => {
      const key = id();
      await completed(key, 'fp', ok(1));
      wire.afterClaim = async (client) => {
        await wire.run(client, `DELETE FROM ${table} WHERE scope = $1 AND key = $2`, [key.scope, key.key]);
      };
      wire.log = [];
      let held: Awaited<ReturnType<typeof ownRow>> = [];
      const claim = await claimIn(key, 'fp-2', async () => {
        held = await ownRow(key);
        await store.complete(key, 'fp-2', ok(2), 10_000);
      });
      const claims = wire.log.filter((s) => s.text.includes(' AS claimed')).length;
      wire.log = undefined;
      expect(claim, 'never the vanished result, never a read of nothing').to.deep.equal({ status: 'claimed' });
      expect(claims, 'claimed again after the read found nothing').to.equal(2);
      expect(held).to.deep.equal([{ fingerprint: 'fp-2', response: null }]);
      expect(await claimIn(key, 'fp-2')).to.deep.equal({ status: 'completed', fingerprint: 'fp-2', response: ok(2) });
    });
  });

  describe('13 · bad idempotency keys', () => {
    const bad: Array<[string, string]> = [
      ['longer than 255 characters', 'k'.repeat(256)],
      ['empty (shorter than the 1-character minimum)', ''],
      ['a newline', 'abc\ndef'],
      ['a NUL', 'abc\u0000def'],
      ['an escape sequence', '\u001b[2Jx'],
      ['a space', "' OR 1=1"],
    ];

    it('should refuse bad keys as validation failures before any SQL, writing nothing', async () => {
      const { mediator } = sample();
      const productId = `p13-${randomUUID()}`;
      await stock(mediator, productId, { A: 10 });
      for (const [name, key] of bad) {
        wire.log = [];
        const result = await mediator.send(move(productId), { ...clerk, idempotencyKey: key });
        const statements = wire.log.length;
        wire.log = undefined;
        expect(result, name).to.have.nested.property('failure.kind', 'validation');
        expect(!result.ok && result.failure.kind === 'validation' && result.failure.issues[0]?.path).to.equal(
          'idempotencyKey',
        );
        expect(statements, `${name}: statements sent`).to.equal(0);
      }
      expect(await audited('MoveInventory', productId)).to.deep.equal([]);
      expect(await bins(productId)).to.deep.equal({ A: 10 });
    });

    it("should store a key like 'OR'1'='1';-- literally, sent only as a bound value, and replay it", async () => {
      const { mediator } = sample();
      const productId = `p13-${randomUUID()}`;
      await stock(mediator, productId, { A: 10 });
      for (const key of [`'OR'1'='1';--${randomUUID()}`, `';DROP-TABLE-"${schema}".ucc_idempotency;--`]) {
        wire.log = [];
        const first = await mediator.send(move(productId, 1), { ...clerk, idempotencyKey: key });
        const sent = wire.log;
        wire.log = undefined;
        expect(first.ok, JSON.stringify(first)).to.equal(true);
        expect(
          sent.filter((s) => s.text.includes(key)),
          'the key in no statement text',
        ).to.deep.equal([]);
        expect(sent.some((s) => carries(s.values, key))).to.equal(true);
        expect(await q(`SELECT key FROM "$schema".ucc_idempotency WHERE key = ?`, [key])).to.deep.equal([{ key }]);
        expect(await mediator.send(move(productId, 1), { ...clerk, idempotencyKey: key })).to.deep.equal({
          ...first,
          replayed: true,
        });
      }
      expect(await bins(productId)).to.deep.equal({ A: 8, B: 2 });
    });

    it('should never log a raw key, nor copy it into audit or outbox rows, whatever the outcome', async () => {
      const boom = withRules(async function boom(_ctx: Context, next: () => Promise<any>): Promise<never> {
        await next();
        throw new Error('handler blew up after writing');
      }, {});
      const cut = terminator();
      const { mediator } = sample();
      const { mediator: exploding } = sample({ inner: [boom] });
      const { mediator: cutting, container } = sample({ inner: [cut.middleware] });
      cut.bind(container);
      const productId = `p13-${randomUUID()}`;
      await stock(mediator, productId, { A: 10 });
      const secret = (what: string) => `k13-${what}-${randomUUID()}`;
      const keys = { ok: secret('ok'), mismatch: secret('mismatch'), domain: secret('domain') };
      const exceptionKey = secret('exception'),
        unavailableKey = secret('unavailable');

      const logged: string[] = [];
      const methods = ['log', 'info', 'warn', 'error', 'debug'] as const;
      const consoles = methods.map((m) => [m, console[m]] as const);
      const writes = [process.stdout.write, process.stderr.write] as const;
      const capture = (...args: unknown[]) => void logged.push(args.map(String).join(' '));
      for (const m of methods) console[m] = capture;
      const swallow = ((chunk: unknown) => {
        capture(chunk);
        return true;
      }) as typeof process.stdout.write;
      process.stdout.write = swallow;
      process.stderr.write = swallow;
      const outcomes: string[] = [];
      const kindOf = (r: Result<unknown, string>) => (r.ok ? (r.replayed ? 'replayed' : 'ok') : r.failure.kind);
      try {
        const as = (key: string) => ({ ...clerk, idempotencyKey: key });
        outcomes.push(kindOf(await mediator.send(move(productId, 1), as(keys.ok))));
        outcomes.push(kindOf(await mediator.send(move(productId, 1), as(keys.ok))));
        outcomes.push(kindOf(await mediator.send(move(productId, 1), as(keys.mismatch))));
        const mismatch = await mediator.send(move(productId, 2), as(keys.mismatch));
        outcomes.push(kindOf(mismatch));
        outcomes.push(kindOf(await mediator.send(move(productId, 999), as(keys.domain))));
        await exploding.send(move(productId, 1), as(exceptionKey)).then(
          () => outcomes.push('no exception'),
          () => outcomes.push('exception'),
        );
        cut.arm();
        outcomes.push(kindOf(await cutting.send(move(productId, 1), as(unavailableKey))));
        // The caller's own failure may name its key (as Stripe's does); logs and records never hold it.
        expect(!mismatch.ok && mismatch.failure.message).to.contain(keys.mismatch);
      } finally {
        for (const [m, fn] of consoles) console[m] = fn;
        process.stdout.write = writes[0];
        process.stderr.write = writes[1];
      }
      expect(outcomes).to.deep.equal([
        'ok',
        'replayed',
        'ok',
        'idempotency_mismatch',
        'domain',
        'exception',
        'unavailable',
      ]);
      const all = [...Object.values(keys), exceptionKey, unavailableKey];
      const auditText = JSON.stringify(await q(`SELECT * FROM "$schema".ucc_audit WHERE actor = 'clerk-1'`));
      const outboxText = JSON.stringify(await q(`SELECT * FROM "$schema".ucc_outbox`));
      for (const key of all) {
        expect(logged.join('\n'), 'logs').not.to.contain(key);
        expect(auditText, 'audit rows').not.to.contain(key);
        expect(outboxText, 'outbox rows').not.to.contain(key);
      }
    });
  });
});
