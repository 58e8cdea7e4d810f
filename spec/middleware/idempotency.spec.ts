// idempotency(): Stripe/IETF semantics — run once per key, replay the stored result, refuse another payload, lease
// and fence crashed owners, expire and reap records (DESIGN "Guarantees" 3; RELIABILITY 1–10, 12).
import { inject, injectable } from 'inversify';
import * as v from 'valibot';
import {
  Command,
  handles,
  ok,
  type Context,
  type Handler,
  type RequestClass,
  type Result,
} from '../../lib/core/index.js';
import {
  audit,
  everyone,
  idempotency,
  policy,
  publish,
  transition,
  unitOfWork,
  validation,
  type IdempotencyOptions,
} from '../../middleware/index.js';
import {
  ACCOUNTS,
  ACCOUNT_HANDLERS,
  Accounts,
  Deposit,
  Deposited,
  Explode,
  FakeClock,
  GetBalance,
  Withdraw,
  alice,
  expect,
  wire,
} from '../support/helpers.js';

// ---- fixtures --------------------------------------------------------------------------------------------------

function deferred<T = void>() {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/** A gate a SlowDeposit run stops at: `entered` resolves when it got there, `release()` lets it go on. */
interface Gate {
  entered: Promise<void>;
  release: () => void;
}
const gates: Array<{ entered: () => void; wait: Promise<void> }> = [];
function gate(): Gate {
  const entered = deferred(),
    released = deferred();
  gates.push({ entered: entered.resolve, wait: released.promise });
  return { entered: entered.promise, release: released.resolve };
}

const money = v.object({
  account: v.pipe(v.string(), v.minLength(1)),
  amount: v.pipe(v.number(), v.integer(), v.minValue(1)),
});

/** A Deposit whose handler stops mid-run at the next queued gate (if any). */
class SlowDeposit extends Command(money)<{ balance: number }> {}
@handles(SlowDeposit)
@injectable()
class SlowDepositHandler implements Handler<SlowDeposit, number> {
  constructor(@inject(ACCOUNTS) private readonly accounts: Accounts) {}
  load(cmd: SlowDeposit) {
    return this.accounts.balances.get(cmd.account) ?? 0;
  }
  async handle(cmd: SlowDeposit, ctx: Context<SlowDeposit, number>) {
    this.accounts.count('SlowDeposit');
    const next = gates.shift();
    if (next) {
      next.entered();
      await next.wait;
    }
    const balance = ctx.state + cmd.amount;
    this.accounts.balances.set(cmd.account, balance);
    ctx.publish(new Deposited({ account: cmd.account, amount: cmd.amount }), { aggregateId: cmd.account });
    return ok({ balance });
  }
}

/** Throws (after writing) while `flaky.failures` > 0: a transient error. */
const flaky = { failures: 0 };
class FlakyDeposit extends Command(money)<{ balance: number }> {}
@handles(FlakyDeposit)
@injectable()
class FlakyDepositHandler implements Handler<FlakyDeposit, number> {
  constructor(@inject(ACCOUNTS) private readonly accounts: Accounts) {}
  load(cmd: FlakyDeposit) {
    return this.accounts.balances.get(cmd.account) ?? 0;
  }
  handle(cmd: FlakyDeposit, ctx: Context<FlakyDeposit, number>) {
    this.accounts.count('FlakyDeposit');
    this.accounts.balances.set(cmd.account, ctx.state + cmd.amount);
    ctx.publish(new Deposited({ account: cmd.account, amount: cmd.amount }));
    if (flaky.failures-- > 0) throw new Error('transient failure');
    return ok({ balance: ctx.state + cmd.amount });
  }
}

/** A command with a record field, whose keys valibot keeps in input order (so canonical JSON matters). */
class Tally extends Command(v.object({ account: v.string(), counts: v.record(v.string(), v.number()) }))<{
  total: number;
}> {}
@handles(Tally)
@injectable()
class TallyHandler implements Handler<Tally> {
  constructor(@inject(ACCOUNTS) private readonly accounts: Accounts) {}
  handle(cmd: Tally) {
    this.accounts.count('Tally');
    return ok({ total: Object.values(cmd.counts).reduce((a, b) => a + b, 0) });
  }
}

const rules = ([Deposit, Withdraw, Explode, GetBalance, SlowDeposit, FlakyDeposit, Tally] as RequestClass[]).map(
  (type) => everyone(type),
);

function setup(options: IdempotencyOptions = {}, clock = new FakeClock()) {
  gates.length = 0;
  flaky.failures = 0;
  const w = wire({
    handlers: [...ACCOUNT_HANDLERS, SlowDepositHandler, FlakyDepositHandler, TallyHandler],
    middleware: [validation(), unitOfWork(), audit(), idempotency(options), policy(rules), transition([]), publish()],
    memory: { clock },
  });
  return { ...w, clock };
}

const key = (idempotencyKey: string, extra: Record<string, unknown> = {}) => ({ ...alice, idempotencyKey, ...extra });
const kinds = (results: ReadonlyArray<Result<unknown, string>>) =>
  results.map((r) => (r.ok ? (r.replayed ? 'replayed' : 'ok') : r.failure.kind));

// ---- specs -----------------------------------------------------------------------------------------------------

describe('idempotency()', () => {
  it('should run the handler once on a first send and commit one effect, one audit row and one message', async () => {
    const w = setup();
    const result = await w.mediator.send(Deposit.from({ account: 'a', amount: 10 }), key('first-1'));
    expect(result).to.deep.equal({ ok: true, value: { balance: 10 } });
    expect(w.accounts.runs('Deposit')).to.equal(1);
    expect(w.accounts.balances.get('a')).to.equal(10);
    expect((await w.audit.list()).map((r) => r.outcome)).to.deep.equal(['ok']);
    await w.settled();
    expect(w.bus.published).to.have.length(1);
    expect(await w.outbox.pending()).to.equal(0);
  });

  it('should replay the same key and payload: replayed, deep-equal value, no run, no new message', async () => {
    const w = setup();
    const first = await w.mediator.send(Deposit.from({ account: 'a', amount: 10 }), key('replay-1'));
    await w.settled();
    const replay = await w.mediator.send(Deposit.from({ account: 'a', amount: 10 }), key('replay-1'));
    expect(replay).to.deep.equal({ ok: true, value: { balance: 10 }, replayed: true });
    expect(first.ok && replay.ok && replay.value).to.deep.equal(first.ok && first.value);
    expect(w.accounts.runs('Deposit')).to.equal(1);
    expect(w.accounts.balances.get('a')).to.equal(10);
    expect(await w.outbox.pending()).to.equal(0);
    await w.settled();
    expect(w.bus.published).to.have.length(1);
    const records = await w.audit.list();
    expect(records.map((r) => [r.outcome, r.replayed])).to.deep.equal([
      ['ok', undefined],
      ['ok', true],
    ]);
  });

  it('should treat reordered JSON keys as the same payload', async () => {
    const w = setup();
    const first = await w.mediator.send(
      Tally.from(JSON.parse('{"account":"a","counts":{"x":1,"y":2,"z":3}}')),
      key('order-1'),
    );
    const reordered = await w.mediator.send(
      Tally.from(JSON.parse('{"counts":{"z":3,"x":1,"y":2},"account":"a"}')),
      key('order-1'),
    );
    expect(first).to.deep.equal({ ok: true, value: { total: 6 } });
    expect(reordered).to.deep.equal({ ok: true, value: { total: 6 }, replayed: true });
    expect(w.accounts.runs('Tally')).to.equal(1);
    const changed = await w.mediator.send(Tally.from({ account: 'a', counts: { x: 1, y: 2, z: 4 } }), key('order-1'));
    expect(kinds([changed])).to.deep.equal(['idempotency_mismatch']);
  });

  describe('idempotency_mismatch', () => {
    const others: Array<[string, () => object]> = [
      ['another payload', () => SlowDeposit.from({ account: 'a', amount: 99 })],
      ['another account', () => SlowDeposit.from({ account: 'b', amount: 5 })],
      ['another command type with the same payload', () => Deposit.from({ account: 'a', amount: 5 })],
      ['another command type (Withdraw)', () => Withdraw.from({ account: 'a', amount: 5 })],
    ];

    for (const [name, other] of others) {
      it(`should refuse ${name} under the same key: in flight it waits for the first, then sees the mismatch`, async () => {
        const w = setup();
        const g = gate();
        const first = w.mediator.send(SlowDeposit.from({ account: 'a', amount: 5 }), key('mismatch-1'));
        await g.entered;
        const during = w.mediator.send(other() as SlowDeposit, key('mismatch-1'));
        g.release();
        expect(await first).to.deep.equal({ ok: true, value: { balance: 5 } });
        const waited = await during;
        expect(waited.ok).to.equal(false);
        expect(!waited.ok && waited.failure).to.include({ kind: 'idempotency_mismatch' });
        expect(!waited.ok && waited.failure.message).to.contain('mismatch-1');
        const after = await w.mediator.send(other() as SlowDeposit, key('mismatch-1'));
        expect(kinds([after])).to.deep.equal(['idempotency_mismatch']);
        expect(w.accounts.runs('SlowDeposit')).to.equal(1);
        expect(w.accounts.runs('Deposit') + w.accounts.runs('Withdraw')).to.equal(0);
        expect(w.accounts.balances.get('a')).to.equal(5);
        expect(w.accounts.balances.get('b')).to.equal(undefined);
        const replay = await w.mediator.send(SlowDeposit.from({ account: 'a', amount: 5 }), key('mismatch-1'));
        expect(replay).to.deep.equal({ ok: true, value: { balance: 5 }, replayed: true });
        await w.settled();
        expect(w.bus.published).to.have.length(1);
        expect((await w.audit.list()).map((r) => r.outcome)).to.deep.equal([
          'ok',
          'idempotency_mismatch',
          'idempotency_mismatch',
          'ok',
        ]);
      });
    }
  });

  it('should make a duplicate of an in-flight send wait for it, then replay its result', async () => {
    const w = setup();
    const g = gate();
    const first = w.mediator.send(SlowDeposit.from({ account: 'a', amount: 5 }), key('busy-1'));
    await g.entered;
    const duplicate = w.mediator.send(SlowDeposit.from({ account: 'a', amount: 5 }), key('busy-1'));
    g.release();
    expect(await first).to.deep.equal({ ok: true, value: { balance: 5 } });
    expect(await duplicate).to.deep.equal({ ok: true, value: { balance: 5 }, replayed: true });
    expect(w.accounts.runs('SlowDeposit')).to.equal(1);
  });

  describe('50 concurrent sends with one key', () => {
    it('should run the handler once, publish one message and replay the rest', async () => {
      const w = setup();
      const results = await Promise.all(
        Array.from({ length: 50 }, () => w.mediator.send(Deposit.from({ account: 'a', amount: 7 }), key('burst-1'))),
      );
      const counts = kinds(results).reduce<Record<string, number>>(
        (acc, k) => ({ ...acc, [k]: (acc[k] ?? 0) + 1 }),
        {},
      );
      expect(counts).to.deep.equal({ ok: 1, replayed: 49 });
      for (const r of results) expect(r.ok && r.value).to.deep.equal({ balance: 7 });
      expect(w.accounts.runs('Deposit')).to.equal(1);
      expect(w.accounts.balances.get('a')).to.equal(7);
      await w.settled();
      expect(w.bus.published).to.have.length(1);
      expect(await w.audit.list()).to.have.length(50);
    });
  });

  it('should store a domain failure and replay it without running the handler', async () => {
    const w = setup();
    const first = await w.mediator.send(Withdraw.from({ account: 'a', amount: 50 }), key('domain-1'));
    expect(first).to.deep.equal({
      ok: false,
      failure: {
        kind: 'domain',
        code: 'insufficient_funds',
        message: 'Domain rule failed: insufficient_funds',
        details: { available: 0 },
      },
    });
    await w.mediator.send(Deposit.from({ account: 'a', amount: 100 }), alice); // now the withdrawal would succeed
    const replay = await w.mediator.send(Withdraw.from({ account: 'a', amount: 50 }), key('domain-1'));
    expect(replay).to.deep.equal({ ...first, replayed: true });
    expect(w.accounts.runs('Withdraw')).to.equal(1);
    expect(w.accounts.balances.get('a')).to.equal(100);
  });

  it('should release the claim when the handler throws, so a retry runs (and nothing of the failed run remains)', async () => {
    const w = setup();
    flaky.failures = 1;
    await expect(w.mediator.send(FlakyDeposit.from({ account: 'a', amount: 3 }), key('throw-1'))).to.be.rejectedWith(
      Error,
      'transient failure',
    );
    expect(w.accounts.balances.get('a')).to.equal(undefined);
    expect(await w.outbox.pending()).to.equal(0);
    const retry = await w.mediator.send(FlakyDeposit.from({ account: 'a', amount: 3 }), key('throw-1'));
    expect(retry).to.deep.equal({ ok: true, value: { balance: 3 } });
    const replay = await w.mediator.send(FlakyDeposit.from({ account: 'a', amount: 3 }), key('throw-1'));
    expect(replay).to.deep.equal({ ok: true, value: { balance: 3 }, replayed: true });
    expect(w.accounts.runs('FlakyDeposit')).to.equal(2);
    expect(w.accounts.balances.get('a')).to.equal(3);
    await w.settled();
    expect(w.bus.published).to.have.length(1);
    expect((await w.audit.list()).map((r) => r.outcome)).to.deep.equal(['error', 'ok', 'ok']);
  });

  describe('scope', () => {
    const scopes: Array<[string, object, object]> = [
      ['two actors', { actor: { id: 'alice' } }, { actor: { id: 'bob' } }],
      ['two tenants', { actor: { id: 'alice' }, tenant: 't1' }, { actor: { id: 'alice' }, tenant: 't2' }],
      ['an actor and an anonymous send', { actor: { id: 'alice' } }, {}],
    ];
    for (const [name, a, b] of scopes) {
      it(`should run twice for the same key from ${name}, never sharing a result`, async () => {
        const w = setup();
        const first = await w.mediator.send(Deposit.from({ account: 'shared', amount: 10 }), {
          ...a,
          idempotencyKey: 'scoped-1',
        });
        const second = await w.mediator.send(Deposit.from({ account: 'shared', amount: 10 }), {
          ...b,
          idempotencyKey: 'scoped-1',
        });
        expect(first).to.deep.equal({ ok: true, value: { balance: 10 } });
        expect(second).to.deep.equal({ ok: true, value: { balance: 20 } });
        expect(w.accounts.runs('Deposit')).to.equal(2);
        // Each scope replays its own result.
        expect(
          await w.mediator.send(Deposit.from({ account: 'shared', amount: 10 }), { ...a, idempotencyKey: 'scoped-1' }),
        ).to.deep.equal({ ok: true, value: { balance: 10 }, replayed: true });
        expect(
          await w.mediator.send(Deposit.from({ account: 'shared', amount: 10 }), { ...b, idempotencyKey: 'scoped-1' }),
        ).to.deep.equal({ ok: true, value: { balance: 20 }, replayed: true });
      });
    }
  });

  it('should run anew once the stored result passed its TTL', async () => {
    const w = setup({ ttlMs: 60_000 });
    await w.mediator.send(Deposit.from({ account: 'a', amount: 10 }), key('ttl-1'));
    w.clock.advance(59_999);
    expect(await w.mediator.send(Deposit.from({ account: 'a', amount: 10 }), key('ttl-1'))).to.deep.equal({
      ok: true,
      value: { balance: 10 },
      replayed: true,
    });
    w.clock.advance(2);
    expect(await w.mediator.send(Deposit.from({ account: 'a', amount: 10 }), key('ttl-1'))).to.deep.equal({
      ok: true,
      value: { balance: 20 },
    });
    expect(w.accounts.runs('Deposit')).to.equal(2);
  });

  it('should reap() expired records only', async () => {
    const w = setup({ ttlMs: 1_000 });
    await w.mediator.send(Deposit.from({ account: 'a', amount: 1 }), key('reap-old'));
    w.clock.advance(600);
    await w.mediator.send(Deposit.from({ account: 'b', amount: 1 }), key('reap-new'));
    expect(await w.idempotency.reap()).to.equal(0);
    w.clock.advance(600); // reap-old expired at 1,000 ms; reap-new expires at 1,600 ms
    expect(await w.idempotency.reap()).to.equal(1);
    expect(await w.idempotency.reap()).to.equal(0);
    expect(await w.mediator.send(Deposit.from({ account: 'b', amount: 1 }), key('reap-new'))).to.deep.equal({
      ok: true,
      value: { balance: 1 },
      replayed: true,
    });
    expect(await w.mediator.send(Deposit.from({ account: 'a', amount: 1 }), key('reap-old'))).to.deep.equal({
      ok: true,
      value: { balance: 2 },
    });
    expect(w.accounts.runs('Deposit')).to.equal(3);
    expect(w.accounts.balances.get('a')).to.equal(2); // business rows survive the reaper
  });

  it('should store nothing for a validation failure with a key, so the corrected retry runs once', async () => {
    const w = setup();
    const bad = await w.mediator.send(Deposit.from({ account: 'a', amount: -1 }), key('fix-1'));
    expect(kinds([bad])).to.deep.equal(['validation']);
    const fixed = await w.mediator.send(Deposit.from({ account: 'a', amount: 1 }), key('fix-1'));
    expect(fixed).to.deep.equal({ ok: true, value: { balance: 1 } });
    const again = await w.mediator.send(Deposit.from({ account: 'a', amount: 1 }), key('fix-1'));
    expect(again).to.deep.equal({ ok: true, value: { balance: 1 }, replayed: true });
    expect(w.accounts.runs('Deposit')).to.equal(1);
  });

  it('should not touch sends without a key', async () => {
    const w = setup();
    await w.mediator.send(Deposit.from({ account: 'a', amount: 1 }), alice);
    await w.mediator.send(Deposit.from({ account: 'a', amount: 1 }), alice);
    expect(w.accounts.runs('Deposit')).to.equal(2);
    expect(w.accounts.balances.get('a')).to.equal(2);
  });
});
