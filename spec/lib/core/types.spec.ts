// Type-level tests: `tsc --noEmit` (part of npm test) fails when inference breaks; the runtime part keeps mocha honest.
import { expectTypeOf } from 'expect-type';
import * as v from 'valibot';
import {
  Command,
  Query,
  fail,
  ok,
  type Context,
  type Failure,
  type FailureOf,
  type Handler,
  type Mediator,
  type Result,
  type ResultOf,
} from '../../../lib/core/index.js';
import { expect } from '../../support/helpers.js';

class Move extends Command(v.object({ productId: v.string(), qty: v.number(), tags: v.optional(v.array(v.string())) }))<
  { sourceQtyAfter: number; destQtyAfter: number },
  'insufficient_stock' | 'same_bin'
> {}
class Find extends Query(v.object({ id: v.string() }))<{ name: string } | null> {}

describe('type inference', () => {
  it('should infer the result and domain failure codes of send() from the request class', () => {
    expectTypeOf<ResultOf<Move>>().toEqualTypeOf<{ sourceQtyAfter: number; destQtyAfter: number }>();
    expectTypeOf<FailureOf<Move>>().toEqualTypeOf<'insufficient_stock' | 'same_bin'>();
    expectTypeOf<FailureOf<Find>>().toEqualTypeOf<never>();
    expectTypeOf<Mediator['send']>().toBeFunction();
    type Sent = Awaited<ReturnType<typeof sendMove>>;
    expectTypeOf<Sent>().toEqualTypeOf<
      Result<{ sourceQtyAfter: number; destQtyAfter: number }, 'insufficient_stock' | 'same_bin'>
    >();
    // eslint-disable-next-line @typescript-eslint/no-unused-vars -- only its type is checked
    async function sendMove(m: Mediator) {
      return m.send(Move.from({}));
    }
    async function narrow(m: Mediator) {
      const r = await m.send(new Move({ productId: 'p', qty: 1 }));
      if (r.ok) expectTypeOf(r.value.destQtyAfter).toEqualTypeOf<number>();
      else if (r.failure.kind === 'domain')
        expectTypeOf(r.failure.code).toEqualTypeOf<'insufficient_stock' | 'same_bin'>();
      else if (r.failure.kind === 'invalid_transition')
        expectTypeOf(r.failure.allowed).toEqualTypeOf<readonly string[]>();
    }
    void narrow;
  });

  it('should type request fields from the schema', () => {
    const move = new Move({ productId: 'p', qty: 2 });
    expectTypeOf(move.productId).toEqualTypeOf<string>();
    expectTypeOf(move.tags).toEqualTypeOf<string[] | undefined>();
    // @ts-expect-error qty must be a number
    void new Move({ productId: 'p', qty: '2' });
    expect(() => {
      // @ts-expect-error fields are read-only (and frozen at runtime)
      move.qty = 3;
    }).to.throw(TypeError);
    expect(move.qty).to.equal(2);
  });

  it('should hold handlers to their request result and failure codes', () => {
    const good: Handler<Move, number> = {
      load: () => 4,
      handle: (cmd, ctx: Context<Move, number>) =>
        ctx.state < cmd.qty ? fail('insufficient_stock') : ok({ sourceQtyAfter: 1, destQtyAfter: 2 }),
    };
    // @ts-expect-error 'out_of_cheese' is not a failure code of Move
    const badCode: Handler<Move> = { handle: () => fail('out_of_cheese') };
    // @ts-expect-error the value has the wrong shape
    const badValue: Handler<Move> = { handle: () => ok({ sourceQtyAfter: 'x' }) };
    expect([good, badCode, badValue]).to.have.length(3);
  });

  it('should make Failure a discriminated union on kind', () => {
    const describe = (f: Failure<'x'>): string => {
      switch (f.kind) {
        case 'validation':
          return f.issues.map((i) => i.path).join();
        case 'invalid_transition':
          return `${f.from}->${f.to}`;
        case 'domain':
          return f.code;
        default:
          return f.message;
      }
    };
    expect(describe({ kind: 'domain', code: 'x', message: '' })).to.equal('x');
  });
});

describe('type inference of request-class parameters', () => {
  it('should type ctx.request in rule(), guard() and handles() from the class given', async () => {
    const { rule } = await import('../../../middleware/policy.js');
    const r = rule(Move, (ctx) => ctx.request.qty > 0);
    expectTypeOf(r.check).parameter(0).toHaveProperty('request').toEqualTypeOf<Move>();
    // @ts-expect-error Move has no field 'orderId'
    rule(Move, (ctx) => ctx.request.orderId === 'x');
    expect(r.type).to.equal(Move);
  });
});
