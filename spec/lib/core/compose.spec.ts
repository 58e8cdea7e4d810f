// Koa-compose's cases, ported: onion order, one next() per step, errors propagate, results flow back out.
import { compose, type Step } from '../../../lib/core/compose.js';
import { UseCaseError } from '../../../lib/core/index.js';
import { expect } from '../../support/helpers.js';

type Ctx = { log: number[] };
const terminal = async (ctx: Ctx) => {
  ctx.log.push(0);
  return 'done';
};

describe('compose()', () => {
  it('should run steps as an onion and return the innermost result outwards', async () => {
    const steps: Array<Step<Ctx, string>> = [1, 2, 3].map((n) => async (ctx, next) => {
      ctx.log.push(n);
      const result = await next();
      ctx.log.push(n * 10);
      return `${result}<${n}`;
    });
    const ctx = { log: [] as number[] };
    expect(await compose(steps)(ctx, terminal)).to.equal('done<3<2<1');
    expect(ctx.log).to.deep.equal([1, 2, 3, 0, 30, 20, 10]);
  });

  it('should let a step answer without calling next (short-circuit)', async () => {
    const ctx = { log: [] as number[] };
    const result = await compose<Ctx, string>([
      async () => 'stopped',
      async (c, next) => {
        c.log.push(2);
        return next();
      },
    ])(ctx, terminal);
    expect(result).to.equal('stopped');
    expect(ctx.log).to.deep.equal([]);
  });

  it('should reject when next() is called twice', async () => {
    const twice: Step<Ctx, string> = async function twice(_ctx, next) {
      await next();
      return next();
    };
    await expect(compose([twice])({ log: [] }, terminal)).to.be.rejectedWith(
      UseCaseError,
      /next\(\) called multiple times in middleware "twice"/,
    );
  });

  it('should turn a synchronous throw into a rejection', async () => {
    const throws: Step<Ctx, string> = () => {
      throw new Error('sync');
    };
    await expect(compose([throws])({ log: [] }, terminal)).to.be.rejectedWith('sync');
  });

  it('should let an outer step catch an inner error', async () => {
    const catcher: Step<Ctx, string> = async (_ctx, next) => next().catch((e: Error) => `caught ${e.message}`);
    const thrower: Step<Ctx, string> = async () => {
      throw new Error('inner');
    };
    expect(await compose([catcher, thrower])({ log: [] }, terminal)).to.equal('caught inner');
  });

  it('should share one context and work with no steps', async () => {
    const ctx = { log: [] as number[] };
    expect(await compose<Ctx, string>([])(ctx, terminal)).to.equal('done');
    expect(ctx.log).to.deep.equal([0]);
  });

  it('should be reusable: each call gets its own next() guard', async () => {
    const run = compose<Ctx, string>([async (_c, next) => next()]);
    const results = await Promise.all([run({ log: [] }, terminal), run({ log: [] }, terminal)]);
    expect(results).to.deep.equal(['done', 'done']);
  });

  it('should reject when the terminal throws, and pass results of non-async steps', async () => {
    const plain: Step<Ctx, string> = (_ctx, next) => next();
    await expect(
      compose([plain])({ log: [] }, () => {
        throw new Error('terminal');
      }),
    ).to.be.rejectedWith('terminal');
  });
});
