// unitOfWork(): one transaction per send, rolled back on failure or throw; commit hooks in order; bounded retries
// that re-run load and checks; nested sends join as savepoints and their events leave at the outermost commit
// (DESIGN "Guarantees" 2 and 6; RELIABILITY 6, 17).
import { Container, inject, injectable } from 'inversify';
import * as v from 'valibot';
import { MemoryOutbox, MemoryUnitOfWork, memoryModule } from '../../adapters/memory/index.js';
import {
  Command,
  Event,
  TOKENS,
  createMediator,
  fail,
  handles,
  ok,
  withRules,
  type AnyResult,
  type Context,
  type RequestClass,
  type Handler,
  type Middleware,
  type UnitOfWork,
} from '../../lib/core/index.js';
import type { Relay } from '../../lib/messaging/index.js';
import {
  audit,
  everyone,
  idempotency,
  policy,
  publish,
  rule,
  transition,
  unitOfWork,
  validation,
} from '../../middleware/index.js';
import {
  ACCOUNTS,
  ACCOUNT_HANDLERS,
  Accounts,
  Deposit,
  Deposited,
  Explode,
  GetBalance,
  Withdraw,
  alice,
  expect,
  recorder,
  wire,
} from '../support/helpers.js';

// ---- fixtures --------------------------------------------------------------------------------------------------

const mode = v.picklist(['ok', 'fail', 'throw']);
class Moved extends Event(v.object({ account: v.string(), delta: v.number() })) {
  static readonly type = 'account.moved';
}

/** Writes two balances and stages two events, then succeeds, fails or throws. */
class Transfer extends Command(v.object({ from: v.string(), to: v.string(), amount: v.number(), mode }))<
  { from: number; to: number },
  'refused'
> {}
@handles(Transfer)
@injectable()
class TransferHandler implements Handler<Transfer> {
  constructor(@inject(ACCOUNTS) private readonly accounts: Accounts) {}
  async handle(cmd: Transfer, ctx: Context<Transfer>) {
    this.accounts.count('Transfer');
    const from = (this.accounts.balances.get(cmd.from) ?? 0) - cmd.amount;
    const to = (this.accounts.balances.get(cmd.to) ?? 0) + cmd.amount;
    this.accounts.balances.set(cmd.from, from);
    ctx.publish(new Moved({ account: cmd.from, delta: -cmd.amount }));
    await new Promise((resolve) => setImmediate(resolve));
    this.accounts.balances.set(cmd.to, to);
    ctx.publish(new Moved({ account: cmd.to, delta: cmd.amount }));
    if (cmd.mode === 'fail') return fail('refused');
    if (cmd.mode === 'throw') throw new Error('transfer exploded');
    return ok({ from, to });
  }
}

/** Registers every hook and logs where it ran (in the ambient transaction or not). */
let hookLog: string[] = [];
class Hooked extends Command(v.object({ mode }))<void, 'refused'> {}
@handles(Hooked)
@injectable()
class HookedHandler implements Handler<Hooked> {
  constructor(@inject(MemoryUnitOfWork) private readonly uow: MemoryUnitOfWork) {}
  handle(cmd: Hooked, ctx: Context<Hooked>) {
    const where = () => (this.uow.current() ? 'in tx' : 'no tx');
    const what = (r: AnyResult | undefined) => (r === undefined ? 'undefined' : r.ok ? 'ok' : r.failure.kind);
    ctx.beforeCommit((r) => {
      hookLog.push(`beforeCommit ${where()} ${what(r)}`);
    });
    ctx.afterCommit((r) => {
      hookLog.push(`afterCommit ${where()} ${what(r)}`);
    });
    ctx.afterRollback((r) => {
      hookLog.push(`afterRollback ${where()} ${what(r)}`);
    });
    hookLog.push('handle');
    if (cmd.mode === 'fail') return fail('refused');
    if (cmd.mode === 'throw') throw new Error('hooked exploded');
    return ok(undefined);
  }
}

/** A deposit that counts its loads and its after-commit hooks. */
const counted = { loads: 0, policy: 0, afterCommit: 0 };
class CountedDeposit extends Command(v.object({ account: v.string(), amount: v.number() }))<{ balance: number }> {}
@handles(CountedDeposit)
@injectable()
class CountedDepositHandler implements Handler<CountedDeposit, number> {
  constructor(@inject(ACCOUNTS) private readonly accounts: Accounts) {}
  load(cmd: CountedDeposit) {
    counted.loads++;
    return this.accounts.balances.get(cmd.account) ?? 0;
  }
  handle(cmd: CountedDeposit, ctx: Context<CountedDeposit, number>) {
    this.accounts.count('CountedDeposit');
    this.accounts.balances.set(cmd.account, ctx.state + cmd.amount);
    ctx.publish(new Deposited({ account: cmd.account, amount: cmd.amount }));
    ctx.afterCommit(() => {
      counted.afterCommit++;
    });
    return ok({ balance: ctx.state + cmd.amount });
  }
}

/** Writes, sends a nested request in its transaction, runs the probe, then commits or fails. */
let midFlight: (() => Promise<void>) | undefined;
class Outer extends Command(
  v.object({
    account: v.string(),
    nested: v.picklist(['deposit', 'transfer-fail', 'transfer-throw']),
    then: v.picklist(['ok', 'fail']),
  }),
)<{ nested: string }, 'outer_refused'> {}
@handles(Outer)
@injectable()
class OuterHandler implements Handler<Outer> {
  constructor(@inject(ACCOUNTS) private readonly accounts: Accounts) {}
  async handle(cmd: Outer, ctx: Context<Outer>) {
    this.accounts.count('Outer');
    this.accounts.balances.set(cmd.account, (this.accounts.balances.get(cmd.account) ?? 0) + 1);
    ctx.publish(new Deposited({ account: cmd.account, amount: 1 }));
    let nested: string;
    if (cmd.nested === 'deposit') {
      const r = await ctx.send(new Deposit({ account: 'nested', amount: 5 }));
      nested = r.ok ? 'ok' : r.failure.kind;
    } else if (cmd.nested === 'transfer-fail') {
      const r = await ctx.send(new Transfer({ from: 'n1', to: 'n2', amount: 5, mode: 'fail' }));
      nested = r.ok ? 'ok' : r.failure.kind;
    } else {
      nested = await ctx.send(new Transfer({ from: 'n1', to: 'n2', amount: 5, mode: 'throw' })).then(
        () => 'ok',
        (e: Error) => `threw ${e.message}`,
      );
    }
    await midFlight?.();
    if (cmd.then === 'fail') return fail('outer_refused');
    return ok({ nested });
  }
}

const HANDLERS = [...ACCOUNT_HANDLERS, TransferHandler, HookedHandler, CountedDepositHandler, OuterHandler];
const publicRules = () =>
  ([Deposit, Withdraw, Explode, GetBalance, Transfer, Hooked, Outer] as RequestClass[]).map((t) => everyone(t));
const countedRule = rule(CountedDeposit, async (ctx) => {
  counted.policy++;
  await ctx.load();
  return true;
});

function stack(options: { maxAttempts?: number } = {}, outer: Middleware[] = []): Middleware[] {
  return [
    validation(),
    ...outer,
    unitOfWork(options),
    audit(),
    idempotency(),
    policy([...publicRules(), countedRule]),
    transition([]),
    publish(),
  ];
}

function reset() {
  hookLog = [];
  midFlight = undefined;
  counted.loads = 0;
  counted.policy = 0;
  counted.afterCommit = 0;
}

function setup() {
  reset();
  return wire({ handlers: HANDLERS, middleware: stack() });
}

/** Errors a test UnitOfWork raises: a serialization failure (retryable) and a lost connection (unavailable). */
class SerializationFailure extends Error {
  readonly code = '40001';
}
class ConnectionLost extends Error {
  readonly code = '57P01';
}

/** Wraps the memory unit of work; the first `failures` top-level transactions fail at commit with `error()`. */
class FaultyUnitOfWork implements UnitOfWork {
  attempts = 0;
  constructor(
    private readonly inner: MemoryUnitOfWork,
    public failures: number,
    private readonly error: () => Error,
  ) {}
  transaction<T>(work: () => Promise<T>, shouldCommit: (value: T) => boolean): Promise<T> {
    if (this.inner.current()) return this.inner.transaction(work, shouldCommit); // a savepoint: pass through
    const attempt = ++this.attempts;
    return this.inner.transaction(async () => {
      const value = await work();
      if (attempt <= this.failures) throw this.error(); // e.g. COMMIT failed with 40001: the whole tx is undone
      return value;
    }, shouldCommit);
  }
  isRetryable(error: unknown): boolean {
    return error instanceof SerializationFailure;
  }
  isUnavailable(error: unknown): boolean {
    return error instanceof ConnectionLost;
  }
}

/** A container like wire()'s, with some ports replaced before the mediator resolves them. */
function wireWith(options: {
  uow?: (memory: MemoryUnitOfWork) => UnitOfWork;
  relay?: (memory: Relay) => Relay;
  maxAttempts?: number;
  outer?: Middleware[];
}) {
  reset();
  const container = new Container();
  container.load(memoryModule());
  const memory = container.get(MemoryUnitOfWork);
  const uow = options.uow?.(memory);
  if (uow) container.rebind(TOKENS.UnitOfWork).toConstantValue(uow);
  if (options.relay) {
    const replacement = options.relay(container.get<Relay>(TOKENS.Relay));
    container.rebind(TOKENS.Relay).toConstantValue(replacement);
  }
  container.bind(ACCOUNTS).to(Accounts).inSingletonScope();
  const mediator = createMediator(container, {
    handlers: HANDLERS,
    middleware: stack(options.maxAttempts === undefined ? {} : { maxAttempts: options.maxAttempts }, options.outer),
  });
  const outbox = container.get(MemoryOutbox);
  const relay = container.get<Relay>(TOKENS.Relay);
  return {
    mediator,
    uow,
    outbox,
    relay,
    accounts: container.get<Accounts>(ACCOUNTS),
    audit: container.get<{ list(): Promise<Array<{ outcome: string }>> }>(TOKENS.AuditStore),
    bus: container.get<{ published: unknown[]; idle(): Promise<void> }>(TOKENS.MessageBus),
    async settled() {
      await relay.drain();
      await this.bus.idle();
    },
  };
}

// ---- specs -----------------------------------------------------------------------------------------------------

describe('unitOfWork()', () => {
  describe('rollback', () => {
    for (const outcome of ['fail', 'throw'] as const) {
      it(`should roll back every map write and every staged event when the handler ${outcome}s`, async () => {
        const w = setup();
        w.accounts.balances.set('a', 100);
        w.accounts.balances.set('b', 0);
        const send = w.mediator.send(Transfer.from({ from: 'a', to: 'b', amount: 30, mode: outcome }), alice);
        if (outcome === 'throw') await expect(send).to.be.rejectedWith(Error, 'transfer exploded');
        else
          expect(await send).to.deep.equal({
            ok: false,
            failure: { kind: 'domain', code: 'refused', message: 'Domain rule failed: refused' },
          });
        expect([w.accounts.balances.get('a'), w.accounts.balances.get('b')]).to.deep.equal([100, 0]);
        expect(w.accounts.runs('Transfer')).to.equal(1);
        expect(await w.outbox.pending()).to.equal(0);
        await w.settled();
        expect(w.bus.published).to.have.length(0);
        expect((await w.audit.list()).map((r) => r.outcome)).to.deep.equal([outcome === 'throw' ? 'error' : 'domain']);
      });
    }

    it('should commit every write and every event of a successful handler', async () => {
      const w = setup();
      w.accounts.balances.set('a', 100);
      expect(await w.mediator.send(Transfer.from({ from: 'a', to: 'b', amount: 30, mode: 'ok' }), alice)).to.deep.equal(
        { ok: true, value: { from: 70, to: 30 } },
      );
      expect([w.accounts.balances.get('a'), w.accounts.balances.get('b')]).to.deep.equal([70, 30]);
      await w.settled();
      expect(w.bus.published.map((m) => (m.payload as { delta: number }).delta)).to.deep.equal([-30, 30]);
    });

    it('should leave the store untouched by a thrown handler (Explode)', async () => {
      const w = setup();
      await expect(w.mediator.send(Explode.from({ account: 'a' }), alice)).to.be.rejectedWith(Error, 'boom');
      expect(w.accounts.balances.get('a')).to.equal(undefined);
      await w.settled();
      expect(w.bus.published).to.have.length(0);
    });
  });

  describe('hooks', () => {
    function hookStack() {
      reset();
      const rec = recorder();
      const w = wire({
        handlers: HANDLERS,
        middleware: [
          validation(),
          rec.step('outer'),
          unitOfWork(),
          audit(),
          policy(publicRules()),
          rec.step('inner'),
          publish(),
        ],
      });
      hookLog = rec.log; // the handler logs its hooks into the recorder's log
      return { w, log: rec.log };
    }

    it('should run beforeCommit inside the transaction and afterCommit after it, on success', async () => {
      const { w, log } = hookStack();
      expect(await w.mediator.send(Hooked.from({ mode: 'ok' }), alice)).to.deep.equal({ ok: true, value: undefined });
      expect(log).to.deep.equal([
        'outer before',
        'inner before',
        'handle',
        'inner after',
        'beforeCommit in tx ok',
        'afterCommit no tx ok',
        'outer after',
      ]);
    });

    it('should run only afterRollback (outside the transaction, with the failure) on a failure', async () => {
      const { w, log } = hookStack();
      const result = await w.mediator.send(Hooked.from({ mode: 'fail' }), alice);
      expect(!result.ok && result.failure.kind).to.equal('domain');
      expect(log).to.deep.equal([
        'outer before',
        'inner before',
        'handle',
        'inner after',
        'afterRollback no tx domain',
        'outer after',
      ]);
    });

    it('should run only afterRollback (with no result) when the handler throws, then reject', async () => {
      const { w, log } = hookStack();
      await expect(w.mediator.send(Hooked.from({ mode: 'throw' }), alice)).to.be.rejectedWith(Error, 'hooked exploded');
      expect(log).to.deep.equal(['outer before', 'inner before', 'handle', 'afterRollback no tx undefined']);
    });
  });

  describe('retries', () => {
    it('should retry a retryable failure, re-running load and policy, with one effect', async () => {
      const w = wireWith({
        uow: (memory) => new FaultyUnitOfWork(memory, 2, () => new SerializationFailure('could not serialize access')),
        maxAttempts: 3,
      });
      const result = await w.mediator.send(CountedDeposit.from({ account: 'a', amount: 10 }), {
        ...alice,
        idempotencyKey: 'retry-1',
      });
      expect(result).to.deep.equal({ ok: true, value: { balance: 10 } });
      expect((w.uow as FaultyUnitOfWork).attempts).to.equal(3);
      expect(counted.loads).to.equal(3);
      expect(counted.policy).to.equal(3);
      expect(w.accounts.runs('CountedDeposit')).to.equal(3);
      expect(w.accounts.balances.get('a')).to.equal(10); // one effect
      expect(counted.afterCommit).to.equal(1); // hooks of failed attempts were forgotten
      await w.settled();
      expect(w.bus.published).to.have.length(1);
      expect((await w.audit.list()).map((r) => r.outcome)).to.deep.equal(['ok']);
      // The idempotency record committed once, with the business write.
      expect(
        await w.mediator.send(CountedDeposit.from({ account: 'a', amount: 10 }), {
          ...alice,
          idempotencyKey: 'retry-1',
        }),
      ).to.deep.equal({ ok: true, value: { balance: 10 }, replayed: true });
    });

    it('should keep the hooks a middleware outside the unit of work registered, across retries', async () => {
      let outerCommits = 0;
      const outer = withRules(async function outer(ctx: Context, next: () => Promise<any>) {
        ctx.afterCommit(() => {
          outerCommits++;
        });
        return next();
      }, {});
      const w = wireWith({
        uow: (memory) => new FaultyUnitOfWork(memory, 2, () => new SerializationFailure('could not serialize access')),
        maxAttempts: 3,
        outer: [outer],
      });
      const result = await w.mediator.send(CountedDeposit.from({ account: 'a', amount: 10 }), alice);
      expect(result).to.deep.equal({ ok: true, value: { balance: 10 } });
      expect((w.uow as FaultyUnitOfWork).attempts).to.equal(3);
      expect(outerCommits, 'registered once, before the retried attempts: runs once').to.equal(1);
      expect(counted.afterCommit, 'the handler registers one per attempt: only the last survives').to.equal(1);
    });

    it('should stop after maxAttempts and reject with the last error, leaving nothing behind', async () => {
      const w = wireWith({
        uow: (memory) =>
          new FaultyUnitOfWork(memory, Infinity, () => new SerializationFailure('could not serialize access')),
        maxAttempts: 4,
      });
      await expect(
        w.mediator.send(CountedDeposit.from({ account: 'a', amount: 10 }), { ...alice, idempotencyKey: 'retry-2' }),
      ).to.be.rejectedWith(SerializationFailure, 'could not serialize access');
      expect((w.uow as FaultyUnitOfWork).attempts).to.equal(4);
      expect(counted.loads).to.equal(4);
      expect(counted.policy).to.equal(4);
      expect(w.accounts.balances.get('a')).to.equal(undefined);
      expect(counted.afterCommit).to.equal(0);
      expect(await w.outbox.pending()).to.equal(0);
      expect((await w.audit.list()).map((r) => r.outcome)).to.deep.equal(['error']);
      // The claim was released: once the database recovers, the same key runs.
      (w.uow as FaultyUnitOfWork).failures = 0;
      expect(
        await w.mediator.send(CountedDeposit.from({ account: 'a', amount: 10 }), {
          ...alice,
          idempotencyKey: 'retry-2',
        }),
      ).to.deep.equal({ ok: true, value: { balance: 10 } });
    });

    it('should use 3 attempts by default', async () => {
      const w = wireWith({
        uow: (memory) => new FaultyUnitOfWork(memory, Infinity, () => new SerializationFailure('deadlock detected')),
      });
      await expect(w.mediator.send(CountedDeposit.from({ account: 'a', amount: 1 }), alice)).to.be.rejectedWith(
        SerializationFailure,
      );
      expect((w.uow as FaultyUnitOfWork).attempts).to.equal(3);
    });

    it('should not retry an error the unit of work does not call retryable', async () => {
      const w = wireWith({ uow: (memory) => new FaultyUnitOfWork(memory, 1, () => new Error('constraint violated')) });
      await expect(w.mediator.send(CountedDeposit.from({ account: 'a', amount: 1 }), alice)).to.be.rejectedWith(
        Error,
        'constraint violated',
      );
      expect((w.uow as FaultyUnitOfWork).attempts).to.equal(1);
      expect(counted.loads).to.equal(1);
    });

    it('should resolve to unavailable (not reject, not retry) when the store is unreachable', async () => {
      const w = wireWith({
        uow: (memory) => new FaultyUnitOfWork(memory, 1, () => new ConnectionLost('terminating connection')),
      });
      const result = await w.mediator.send(CountedDeposit.from({ account: 'a', amount: 10 }), {
        ...alice,
        idempotencyKey: 'down-1',
      });
      expect(result.ok).to.equal(false);
      expect(!result.ok && result.failure.kind).to.equal('unavailable');
      expect((w.uow as FaultyUnitOfWork).attempts).to.equal(1);
      expect(w.accounts.balances.get('a')).to.equal(undefined);
      expect(await w.outbox.pending()).to.equal(0);
      expect((await w.audit.list()).map((r) => r.outcome)).to.deep.equal(['unavailable']);
      // Not stored under the key: the retry after recovery runs.
      expect(
        await w.mediator.send(CountedDeposit.from({ account: 'a', amount: 10 }), {
          ...alice,
          idempotencyKey: 'down-1',
        }),
      ).to.deep.equal({ ok: true, value: { balance: 10 } });
    });
  });

  describe('nested ctx.send', () => {
    it('should roll back only the nested writes and events when the nested send fails, and commit the outer', async () => {
      const w = setup();
      const result = await w.mediator.send(
        Outer.from({ account: 'outer', nested: 'transfer-fail', then: 'ok' }),
        alice,
      );
      expect(result).to.deep.equal({ ok: true, value: { nested: 'domain' } });
      expect(w.accounts.balances.get('outer')).to.equal(1);
      expect([w.accounts.balances.get('n1'), w.accounts.balances.get('n2')]).to.deep.equal([undefined, undefined]);
      expect(w.accounts.runs('Transfer')).to.equal(1);
      await w.settled();
      expect(w.bus.published.map((m) => [m.type, (m.payload as { account: string }).account])).to.deep.equal([
        ['account.deposited', 'outer'],
      ]);
    });

    it('should roll back only the nested writes when the nested send throws and the outer catches it', async () => {
      const w = setup();
      const result = await w.mediator.send(
        Outer.from({ account: 'outer', nested: 'transfer-throw', then: 'ok' }),
        alice,
      );
      expect(result).to.deep.equal({ ok: true, value: { nested: 'threw transfer exploded' } });
      expect(w.accounts.balances.get('outer')).to.equal(1);
      expect(w.accounts.balances.has('n1') || w.accounts.balances.has('n2')).to.equal(false);
      await w.settled();
      expect(w.bus.published).to.have.length(1);
    });

    it('should roll back a successful nested send with its outer send', async () => {
      const w = setup();
      const result = await w.mediator.send(Outer.from({ account: 'outer', nested: 'deposit', then: 'fail' }), alice);
      expect(!result.ok && result.failure).to.include({ kind: 'domain', code: 'outer_refused' });
      expect(w.accounts.runs('Deposit')).to.equal(1);
      expect(w.accounts.balances.has('nested') || w.accounts.balances.has('outer')).to.equal(false);
      expect(await w.outbox.pending()).to.equal(0);
      await w.settled();
      expect(w.bus.published).to.have.length(0);
    });

    it('should wake the relay for nested events only after the outermost commit', async () => {
      let wakes = 0;
      const w = wireWith({
        relay: (memory) => ({
          wake() {
            wakes++;
            memory.wake();
          },
          drain: (ms) => memory.drain(ms),
        }),
      });
      const during: number[] = [];
      midFlight = async () => {
        during.push(wakes, w.bus.published.length);
      };
      const result = await w.mediator.send(Outer.from({ account: 'outer', nested: 'deposit', then: 'ok' }), alice);
      expect(result).to.deep.equal({ ok: true, value: { nested: 'ok' } });
      expect(during).to.deep.equal([0, 0]);
      expect(wakes).to.be.greaterThan(0);
      await w.settled();
      expect(w.bus.published.map((m) => (m as { payload: { account: string } }).payload.account).sort()).to.deep.equal([
        'nested',
        'outer',
      ]);
    });

    // Regression: the memory outbox used to show rows of a still-open transaction to a relay pass.
    it('should not let a relay pass publish nested events before the outermost commit', async () => {
      const w = setup();
      const during: number[] = [];
      midFlight = async () => {
        await w.relay.drain(); // a relay pass that happens to run now (woken by another commit, or after a backoff)
        during.push(w.bus.published.length, await w.outbox.pending());
      };
      const result = await w.mediator.send(Outer.from({ account: 'outer', nested: 'deposit', then: 'fail' }), alice);
      expect(!result.ok && result.failure.kind).to.equal('domain');
      expect(during).to.deep.equal([0, 0]);
      await w.settled();
      expect(w.bus.published).to.have.length(0);
    });
  });

  describe('concurrency', () => {
    it('should let only one of two concurrent withdrawals commit when both together would overdraw', async () => {
      const w = setup();
      w.accounts.balances.set('a', 100);
      const results = await Promise.all([
        w.mediator.send(Withdraw.from({ account: 'a', amount: 60 }), alice),
        w.mediator.send(Withdraw.from({ account: 'a', amount: 60 }), alice),
      ]);
      expect(
        results.map((r) => (r.ok ? 'ok' : r.failure.kind === 'domain' ? r.failure.code : r.failure.kind)).sort(),
      ).to.deep.equal(['insufficient_funds', 'ok']);
      expect(w.accounts.balances.get('a')).to.equal(40);
    });

    it('should never overdraw under 20 concurrent withdrawals', async () => {
      const w = setup();
      w.accounts.balances.set('a', 100);
      const seen: number[] = [];
      const results = await Promise.all(
        Array.from({ length: 20 }, () => w.mediator.send(Withdraw.from({ account: 'a', amount: 30 }), alice)),
      );
      for (const r of results) if (r.ok) seen.push(r.value.balance);
      expect(seen).to.deep.equal([70, 40, 10]);
      expect(
        results.filter((r) => !r.ok && r.failure.kind === 'domain' && r.failure.code === 'insufficient_funds'),
      ).to.have.length(17);
      expect(w.accounts.balances.get('a')).to.equal(10);
    });
  });
});
