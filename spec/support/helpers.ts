// Shared spec fixtures: a tiny accounts domain, a recorder for onion order, a fake clock, and a wired mediator.
import 'reflect-metadata';
import { expect, use } from 'chai';
import chaiAsPromised from 'chai-as-promised';
import { Container, inject, injectable } from 'inversify';
import * as v from 'valibot';
import {
  MemoryAuditStore,
  MemoryBus,
  MemoryOutbox,
  MemoryUnitOfWork,
  TransactionalMap,
  memoryModule,
  type MemoryModuleOptions,
} from '../../adapters/memory/index.js';
import { ManualClock, type Instant } from '../../lib/testing/index.js';
import {
  Command,
  Event,
  Query,
  TOKENS,
  createMediator,
  fail,
  handles,
  ok,
  type Context,
  type Handler,
  type HandlerClass,
  type IdempotencyStore,
  type Middleware,
  type MiddlewareClass,
} from '../../lib/core/index.js';
import type { Relay } from '../../lib/messaging/index.js';

use(chaiAsPromised);
export { expect };

/** Records the order middleware and handlers run in (MediatR's "Outer before … Outer after" log). */
export function recorder() {
  const log: string[] = [];
  const step = (name: string): Middleware => {
    const fn = async (_ctx: Context, next: () => Promise<any>) => {
      log.push(`${name} before`);
      const result = await next();
      log.push(`${name} after`);
      return result;
    };
    Object.defineProperty(fn, 'name', { value: name });
    return fn as Middleware;
  };
  return { log, step };
}

/** The testing kit's settable clock, starting at 2026-01-01 unless told otherwise (specs compare against that date). */
export class FakeClock extends ManualClock {
  constructor(start: Instant = '2026-01-01T00:00:00Z') {
    super(start);
  }
}

export const ACCOUNTS = Symbol.for('spec.Accounts');
/** Account balances that roll back with the memory transaction. */
@injectable()
export class Accounts {
  readonly balances: TransactionalMap<string, number>;
  /** How many times each handler ran (to prove "ran once"). */
  readonly calls = new Map<string, number>();
  constructor(@inject(MemoryUnitOfWork) uow: MemoryUnitOfWork) {
    this.balances = new TransactionalMap(uow);
  }
  count(name: string): void {
    this.calls.set(name, (this.calls.get(name) ?? 0) + 1);
  }
  runs(name: string): number {
    return this.calls.get(name) ?? 0;
  }
}

export class Deposited extends Event(v.object({ account: v.string(), amount: v.number() })) {
  static readonly type = 'account.deposited';
}

const money = v.object({
  account: v.pipe(v.string(), v.minLength(1)),
  amount: v.pipe(v.number(), v.integer(), v.minValue(1)),
});
export class Deposit extends Command(money)<{ balance: number }> {}
export class Withdraw extends Command(money)<{ balance: number }, 'insufficient_funds'> {}
export class Explode extends Command(v.object({ account: v.string() }))<void> {}
export class GetBalance extends Query(v.object({ account: v.string() }))<{ balance: number }> {}

@handles(Deposit)
@injectable()
export class DepositHandler implements Handler<Deposit, number> {
  constructor(@inject(ACCOUNTS) private readonly accounts: Accounts) {}
  load(cmd: Deposit) {
    return this.accounts.balances.get(cmd.account) ?? 0;
  }
  handle(cmd: Deposit, ctx: Context<Deposit, number>) {
    this.accounts.count('Deposit');
    const balance = ctx.state + cmd.amount;
    this.accounts.balances.set(cmd.account, balance);
    ctx.publish(new Deposited({ account: cmd.account, amount: cmd.amount }), { aggregateId: cmd.account });
    return ok({ balance });
  }
}

@handles(Withdraw)
@injectable()
export class WithdrawHandler implements Handler<Withdraw, number> {
  constructor(@inject(ACCOUNTS) private readonly accounts: Accounts) {}
  load(cmd: Withdraw) {
    return this.accounts.balances.get(cmd.account) ?? 0;
  }
  async handle(cmd: Withdraw, ctx: Context<Withdraw, number>) {
    this.accounts.count('Withdraw');
    if (ctx.state < cmd.amount) return fail('insufficient_funds', { available: ctx.state });
    await new Promise((resolve) => setImmediate(resolve)); // let a concurrent send interleave if it could
    this.accounts.balances.set(cmd.account, ctx.state - cmd.amount);
    return ok({ balance: ctx.state - cmd.amount });
  }
}

@handles(Explode)
@injectable()
export class ExplodeHandler implements Handler<Explode> {
  constructor(@inject(ACCOUNTS) private readonly accounts: Accounts) {}
  handle(cmd: Explode, ctx: Context<Explode>): never {
    this.accounts.count('Explode');
    this.accounts.balances.set(cmd.account, 1_000_000);
    ctx.publish(new Deposited({ account: cmd.account, amount: 1_000_000 }));
    throw new Error('boom');
  }
}

@handles(GetBalance)
@injectable()
export class GetBalanceHandler implements Handler<GetBalance> {
  constructor(@inject(ACCOUNTS) private readonly accounts: Accounts) {}
  handle(q: GetBalance) {
    return ok({ balance: this.accounts.balances.get(q.account) ?? 0 });
  }
}

export const ACCOUNT_HANDLERS: HandlerClass[] = [DepositHandler, WithdrawHandler, ExplodeHandler, GetBalanceHandler];

/** A container with memory adapters and the accounts fixture, and a mediator over it. */
export function wire(options: {
  middleware: ReadonlyArray<Middleware | MiddlewareClass>;
  handlers?: HandlerClass[];
  memory?: MemoryModuleOptions;
}) {
  const container = new Container();
  container.load(memoryModule(options.memory));
  container.bind(ACCOUNTS).to(Accounts).inSingletonScope();
  const mediator = createMediator(container, {
    handlers: options.handlers ?? ACCOUNT_HANDLERS,
    middleware: options.middleware,
  });
  return {
    container,
    mediator,
    accounts: container.get<Accounts>(ACCOUNTS),
    audit: container.get<MemoryAuditStore>(TOKENS.AuditStore),
    idempotency: container.get<IdempotencyStore>(TOKENS.IdempotencyStore),
    outbox: container.get(MemoryOutbox),
    bus: container.get(MemoryBus),
    relay: container.get<Relay>(TOKENS.Relay),
    uow: container.get(MemoryUnitOfWork),
    /** Waits until everything committed so far was published and every subscriber ran. */
    async settled() {
      await this.relay.drain();
      await this.bus.idle();
    },
  };
}

export const alice = { actor: { id: 'alice', roles: ['clerk'] } } as const;
