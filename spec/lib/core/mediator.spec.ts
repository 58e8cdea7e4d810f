// createMediator: registration and start-up checks, routing, describe, custom middleware, nested sends.
import { Container, inject, injectable } from 'inversify';
import * as v from 'valibot';
import { memoryModule } from '../../../adapters/memory/index.js';
import {
  Command,
  TOKENS,
  UseCaseError,
  createMediator,
  handles,
  ok,
  withRules,
  MIDDLEWARE,
  type Context,
  type Handler,
  type Middleware,
  type Next,
} from '../../../lib/core/index.js';
import {
  audit,
  everyone,
  idempotency,
  policy,
  publish,
  recommendedStack,
  transition,
  unitOfWork,
  validation,
} from '../../../middleware/index.js';
import {
  ACCOUNTS,
  ACCOUNT_HANDLERS,
  Deposit,
  DepositHandler,
  Deposited,
  Explode,
  FakeClock,
  GetBalance,
  Withdraw,
  alice,
  expect,
  recorder,
  wire,
  type Accounts,
} from '../../support/helpers.js';

class Transfer extends Command(v.object({ from: v.string(), to: v.string(), amount: v.number() }))<
  { moved: number },
  'insufficient_funds'
> {}
@handles(Transfer)
@injectable()
class TransferHandler implements Handler<Transfer> {
  async handle(cmd: Transfer, ctx: Context<Transfer>) {
    const out = await ctx.send(new Withdraw({ account: cmd.from, amount: cmd.amount }));
    if (!out.ok) return out;
    expect(ctx.ports.unitOfWork).to.not.equal(undefined);
    await ctx.send(new Deposit({ account: cmd.to, amount: cmd.amount }));
    return ok({ moved: cmd.amount });
  }
}

const open = policy([
  everyone(Deposit),
  everyone(Withdraw),
  everyone(Explode),
  everyone(GetBalance),
  everyone(Transfer),
]);
const stack = () => [validation(), unitOfWork(), audit(), idempotency(), open, transition([]), publish()];

describe('createMediator()', () => {
  it('should route a send to its handler and infer nothing at runtime it cannot check', async () => {
    const { mediator } = wire({ middleware: stack() });
    const result = await mediator.send(Deposit.from({ account: 'a', amount: 5 }), alice);
    expect(result).to.deep.equal({ ok: true, value: { balance: 5 } });
  });

  it('should throw no_handler with the fix when a type has no handler', async () => {
    const { mediator } = wire({ middleware: [], handlers: [DepositHandler] });
    await expect(mediator.send(Withdraw.from({ account: 'a', amount: 1 }))).to.be.rejectedWith(
      UseCaseError,
      /No handler for Withdraw — write a class marked @handles\(Withdraw\)/,
    );
  });

  it('should throw at start-up for an unmarked handler and for two handlers of one type', () => {
    class Unmarked implements Handler<Deposit> {
      handle() {
        return ok({ balance: 0 });
      }
    }
    @handles(Deposit)
    @injectable()
    class Second implements Handler<Deposit> {
      handle() {
        return ok({ balance: 0 });
      }
    }
    expect(() => wire({ middleware: [], handlers: [Unmarked] })).to.throw(
      UseCaseError,
      /Unmarked is not marked with @handles/,
    );
    expect(() => wire({ middleware: [], handlers: [DepositHandler, Second] })).to.throw(
      UseCaseError,
      /Deposit has two handlers, DepositHandler and Second/,
    );
  });

  const badStacks: Array<[string, () => Middleware[], RegExp]> = [
    [
      'validation not first',
      () => [unitOfWork(), validation()],
      /unitOfWork must come after validation — move validation\(\) before unitOfWork\(\)/,
    ],
    [
      'publish without a unit of work',
      () => [validation(), publish()],
      /publish must run inside unitOfWork\(\) — add unitOfWork\(\)/,
    ],
    [
      'publish outside the unit of work',
      () => [validation(), publish(), unitOfWork()],
      /move unitOfWork\(\) before publish\(\)/,
    ],
    [
      'idempotency outside the unit of work',
      () => [validation(), idempotency(), unitOfWork()],
      /idempotency must run inside unitOfWork\(\) — move unitOfWork\(\) before idempotency\(\)/,
    ],
    [
      'audit inside idempotency',
      () => [validation(), unitOfWork(), idempotency(), audit()],
      /idempotency must come after audit — move audit\(\) before idempotency\(\)/,
    ],
    ['audit without a unit of work', () => [validation(), audit()], /audit must run inside unitOfWork\(\)/],
    [
      'transition before policy',
      () => [validation(), unitOfWork(), transition([]), open],
      /transition must come after policy — move policy\(\) before transition\(\)/,
    ],
    ['a middleware twice', () => [validation(), unitOfWork(), unitOfWork()], /unitOfWork appears twice/],
  ];
  for (const [name, make, message] of badStacks) {
    it(`should reject a stack with ${name} at start-up`, () => {
      expect(() => wire({ middleware: make() }))
        .to.throw(UseCaseError, message)
        .with.property('kind', 'bad_stack');
    });
  }

  it('should require validation to be the very first middleware', () => {
    const { step } = recorder();
    expect(() => wire({ middleware: [step('timing'), validation()] })).to.throw(
      UseCaseError,
      /validation must be first/,
    );
  });

  it('should reject a stack whose middleware needs a port nobody bound', () => {
    const container = new Container();
    container.bind(ACCOUNTS).toConstantValue({});
    expect(() =>
      createMediator(container, { handlers: [DepositHandler], middleware: [validation(), unitOfWork()] }),
    ).to.throw(UseCaseError, /unitOfWork\(\) in the stack of Deposit needs a unitOfWork port — load an adapter module/);
  });

  it('should describe the effective stack per type, with queries skipping idempotency, audit and publish', () => {
    const { mediator } = wire({ middleware: stack() });
    expect(mediator.describe(Deposit)).to.deep.equal({
      middleware: ['validation', 'unitOfWork', 'audit', 'idempotency', 'policy', 'transition', 'publish'],
      handler: 'DepositHandler',
    });
    expect(mediator.describe(GetBalance).middleware).to.deep.equal([
      'validation',
      'unitOfWork',
      'policy',
      'transition',
    ]);
  });

  it('should let a request type opt out of a middleware', () => {
    class Quiet extends Command(v.object({}))<void> {
      static readonly skip = ['audit'];
    }
    @handles(Quiet)
    @injectable()
    class QuietHandler implements Handler<Quiet> {
      handle() {
        return ok(undefined);
      }
    }
    const { mediator } = wire({ middleware: stack(), handlers: [QuietHandler] });
    expect(mediator.describe(Quiet).middleware).to.not.include('audit');
  });

  it('should refuse a rule that names no middleware, listing the names there are', () => {
    const misspelt = withRules(
      async function rateLimit(_ctx, next) {
        return next();
      },
      { after: ['polcy'] },
    );
    expect(() => wire({ middleware: [...stack(), misspelt] }))
      .to.throw(UseCaseError, /rateLimit's rules name "polcy", which is no middleware — use one of: .*\bpolicy\b.*/)
      .with.property('kind', 'bad_stack');
    const named = withRules(
      async function rateLimit(_ctx, next) {
        return next();
      },
      { after: [MIDDLEWARE.policy] },
    );
    expect(() => wire({ middleware: [...stack(), named] })).not.to.throw();
  });

  it("should refuse a request's opt-out that names no middleware", () => {
    class Typo extends Command(v.object({}))<void> {
      static readonly skip = ['audti'];
    }
    @handles(Typo)
    @injectable()
    class TypoHandler implements Handler<Typo> {
      handle() {
        return ok(undefined);
      }
    }
    expect(() => wire({ middleware: stack(), handlers: [TypoHandler] }))
      .to.throw(UseCaseError, /Typo skips "audti", which is no middleware — use one of: .*\baudit\b/)
      .with.property('kind', 'bad_stack');
  });

  it('should run custom middleware as an onion around the handler, outer first (MediatR order)', async () => {
    const { log, step } = recorder();
    const { mediator, accounts } = wire({ middleware: [validation(), step('outer'), step('inner')] });
    const handled = accounts.runs('GetBalance');
    await mediator.send(GetBalance.from({ account: 'a' }));
    expect(log).to.deep.equal(['outer before', 'inner before', 'inner after', 'outer after']);
    expect(accounts.runs('GetBalance')).to.equal(handled);
  });

  it('should resolve a class middleware once from the container with its injected dependencies', async () => {
    const seen: string[] = [];
    @injectable()
    class Timing {
      static readonly rules = { after: ['validation'] };
      constructor(@inject(ACCOUNTS) private readonly accounts: Accounts) {}
      async handle(ctx: Context, next: Next) {
        seen.push(`${ctx.type}:${this.accounts.balances.size}`);
        return next();
      }
    }
    const { mediator } = wire({ middleware: [validation(), Timing, unitOfWork(), open, publish()] });
    await mediator.send(Deposit.from({ account: 'a', amount: 1 }));
    await mediator.send(Deposit.from({ account: 'b', amount: 1 }));
    expect(seen).to.deep.equal(['Deposit:0', 'Deposit:1']);
    expect(mediator.describe(Deposit).middleware[1]).to.equal('Timing');
  });

  it('should resolve handlers from the container on each send (scopes are honoured)', async () => {
    let made = 0;
    @handles(Deposit)
    @injectable()
    class Counting implements Handler<Deposit> {
      constructor() {
        made++;
      }
      handle() {
        return ok({ balance: 0 });
      }
    }
    const container = new Container();
    container.load(memoryModule());
    container.bind(Counting).toSelf().inTransientScope();
    const mediator = createMediator(container, { handlers: [Counting], middleware: [] });
    await mediator.send(new Deposit({ account: 'a', amount: 1 }));
    await mediator.send(new Deposit({ account: 'a', amount: 1 }));
    expect(made).to.equal(2);
  });

  it('should reject a send of something that is not a request instance', async () => {
    const { mediator } = wire({ middleware: [] });
    await expect(mediator.send(null as never)).to.be.rejectedWith(UseCaseError, /send\(\) takes a request instance/);
  });

  it('should throw misuse when ctx.state is read before it was loaded', async () => {
    class Peek extends Command(v.object({}))<void> {}
    @handles(Peek)
    @injectable()
    class PeekHandler implements Handler<Peek, number> {
      handle(_c: Peek, ctx: Context<Peek, number>) {
        void ctx.state;
        return ok(undefined);
      }
    }
    const { mediator } = wire({ middleware: [], handlers: [PeekHandler] });
    await expect(mediator.send(new Peek({}))).to.be.rejectedWith(UseCaseError, /read before it was loaded/);
  });

  it('should run a custom middleware that replaces the result (it sees and returns it)', async () => {
    const override = withRules(async function override(_ctx: Context, next: Next) {
      const result = await next();
      return result.ok ? { ...result, value: { balance: -1 } } : result;
    }, {});
    const { mediator } = wire({ middleware: [validation(), override, unitOfWork(), open, publish()] });
    expect(await mediator.send(Deposit.from({ account: 'a', amount: 1 }))).to.deep.equal({
      ok: true,
      value: { balance: -1 },
    });
  });

  describe('nested ctx.send', () => {
    it('should join the outer transaction and publish nested events only at the outermost commit', async () => {
      const w = wire({ middleware: stack(), handlers: [...ACCOUNT_HANDLERS, TransferHandler] });
      await w.mediator.send(new Deposit({ account: 'x', amount: 10 }), alice);
      await w.settled();
      const before = w.bus.published.length;
      const result = await w.mediator.send(Transfer.from({ from: 'x', to: 'y', amount: 4 }), alice);
      expect(result).to.deep.equal({ ok: true, value: { moved: 4 } });
      await w.settled();
      expect(w.accounts.balances.get('x')).to.equal(6);
      expect(w.accounts.balances.get('y')).to.equal(4);
      const events = w.bus.published.slice(before);
      expect(events.map((m) => m.type)).to.deep.equal([Deposited.type]);
      expect(events[0]!.headers.requestId).to.be.a('string');
      // One audit row for the outer send and one per nested send, all sharing the request id.
      const rows = (await w.audit.list({ order: 'desc', limit: 3 })).map((r) => r.type).sort();
      expect(rows).to.deep.equal(['Deposit', 'Transfer', 'Withdraw']);
    });

    it('should roll the nested writes back with the outer transaction when the outer send fails', async () => {
      @handles(Explode)
      @injectable()
      class NestedThenThrow implements Handler<Explode> {
        async handle(cmd: Explode, ctx: Context<Explode>): Promise<never> {
          await ctx.send(new Deposit({ account: cmd.account, amount: 7 }));
          throw new Error('after nested');
        }
      }
      const w = wire({ middleware: stack(), handlers: [DepositHandler, NestedThenThrow] });
      await expect(w.mediator.send(Explode.from({ account: 'n' }), alice)).to.be.rejectedWith('after nested');
      await w.settled();
      expect(w.accounts.balances.get('n')).to.equal(undefined);
      expect(w.bus.published).to.have.length(0);
      expect(await w.outbox.pending()).to.equal(0);
    });
  });

  it('should stamp audit records with the clock bound under TOKENS.Clock', async () => {
    const clock = new FakeClock('2030-02-03T04:05:06Z');
    const { mediator, audit: store } = wire({ middleware: stack(), memory: { clock } });
    expect(mediator.ports.clock).to.equal(clock);
    await mediator.send(Deposit.from({ account: 'c', amount: 1 }), alice);
    const [row] = await store.list({ order: 'desc', limit: 1 });
    expect(row!.at).to.equal('2030-02-03T04:05:06.000Z');
    expect(TOKENS.Clock).to.equal(Symbol.for('usecasecore.Clock'));
  });

  it('should accept the recommended stack as a one-liner', async () => {
    const { mediator } = wire({ middleware: recommendedStack({ rules: [everyone(Deposit)] }) });
    expect((await mediator.send(Deposit.from({ account: 'r', amount: 2 }), alice)).ok).to.equal(true);
    expect(await mediator.send(Withdraw.from({ account: 'r', amount: 1 }), alice)).to.have.nested.property(
      'failure.kind',
      'forbidden',
    );
  });
});
