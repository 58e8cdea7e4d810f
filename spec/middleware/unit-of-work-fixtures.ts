// What the unitOfWork() specs share: requests and handlers that write, stage events and register hooks; the stacks.
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
  wire,
} from '../support/helpers.js';

const mode = v.picklist(['ok', 'fail', 'throw']);
class Moved extends Event(v.object({ account: v.string(), delta: v.number() })) {
  static readonly type = 'account.moved';
}

/** What the cases hand the handlers: where HookedHandler logs its hooks, what OuterHandler runs mid-flight. */
export const probe: { hookLog: string[]; midFlight: (() => Promise<void>) | undefined } = {
  hookLog: [],
  midFlight: undefined,
};

/** Writes two balances and stages two events, then succeeds, fails or throws. */
export class Transfer extends Command(v.object({ from: v.string(), to: v.string(), amount: v.number(), mode }))<
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
export class Hooked extends Command(v.object({ mode }))<void, 'refused'> {}
@handles(Hooked)
@injectable()
class HookedHandler implements Handler<Hooked> {
  constructor(@inject(MemoryUnitOfWork) private readonly uow: MemoryUnitOfWork) {}
  handle(cmd: Hooked, ctx: Context<Hooked>) {
    const where = () => (this.uow.current() ? 'in tx' : 'no tx');
    const what = (r: AnyResult | undefined) => (r === undefined ? 'undefined' : r.ok ? 'ok' : r.failure.kind);
    ctx.beforeCommit((r) => {
      probe.hookLog.push(`beforeCommit ${where()} ${what(r)}`);
    });
    ctx.afterCommit((r) => {
      probe.hookLog.push(`afterCommit ${where()} ${what(r)}`);
    });
    ctx.afterRollback((r) => {
      probe.hookLog.push(`afterRollback ${where()} ${what(r)}`);
    });
    probe.hookLog.push('handle');
    if (cmd.mode === 'fail') return fail('refused');
    if (cmd.mode === 'throw') throw new Error('hooked exploded');
    return ok(undefined);
  }
}

/** A deposit that counts its loads and its after-commit hooks. */
export const counted = { loads: 0, policy: 0, afterCommit: 0 };
export class CountedDeposit extends Command(v.object({ account: v.string(), amount: v.number() }))<{
  balance: number;
}> {}
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
export class Outer extends Command(
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
    await probe.midFlight?.();
    if (cmd.then === 'fail') return fail('outer_refused');
    return ok({ nested });
  }
}

export const HANDLERS = [...ACCOUNT_HANDLERS, TransferHandler, HookedHandler, CountedDepositHandler, OuterHandler];
export const publicRules = () =>
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

export function reset() {
  probe.hookLog = [];
  probe.midFlight = undefined;
  counted.loads = 0;
  counted.policy = 0;
  counted.afterCommit = 0;
}

export function setup() {
  reset();
  return wire({ handlers: HANDLERS, middleware: stack() });
}

/** Errors a test UnitOfWork raises: a serialization failure (retryable) and a lost connection (unavailable). */
export class SerializationFailure extends Error {
  readonly code = '40001';
}
export class ConnectionLost extends Error {
  readonly code = '57P01';
}

/** Wraps the memory unit of work; the first `failures` top-level transactions fail at commit with `error()`. */
export class FaultyUnitOfWork implements UnitOfWork {
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
export function wireWith(options: {
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
