// Streaming queries: opened through validation, the unit of work, audit and policy (never idempotency), pulled by
// the caller, and closed however the caller stops.
import 'reflect-metadata';
import { Container, injectable } from 'inversify';
import * as v from 'valibot';
import { memoryModule, type MemoryAuditStore } from '../../../adapters/memory/index.js';
import {
  Query,
  TOKENS,
  UseCaseError,
  createMediator,
  handles,
  ok,
  withRules,
  type Context,
  type MiddlewareRules,
  type Next,
} from '../../../lib/core/index.js';
import { recommendedStack, rule } from '../../../middleware/index.js';
import { alice, expect } from '../../support/helpers.js';

class Numbers extends Query(v.object({ to: v.pipe(v.number(), v.integer(), v.minValue(0)) }))<AsyncIterable<number>> {}
class Broken extends Query(v.object({}))<AsyncIterable<number>> {}

/** What the source did: how many items it produced, and whether its finally ran. */
const source = { produced: 0, closed: 0, handled: 0 };

@handles(Numbers)
@injectable()
class NumbersHandler {
  handle(query: Numbers, ctx: Context<Numbers>) {
    source.handled++;
    void ctx;
    async function* count() {
      try {
        for (let n = 1; n <= query.to; n++) {
          source.produced++;
          yield n;
        }
      } finally {
        source.closed++;
      }
    }
    return ok(count());
  }
}

@handles(Broken)
@injectable()
class BrokenHandler {
  handle() {
    return ok([1, 2, 3] as unknown as AsyncIterable<number>);
  }
}

describe('mediator.stream()', () => {
  let mediator: ReturnType<typeof createMediator>;
  let audit: MemoryAuditStore;
  let container: Container;
  beforeEach(() => {
    Object.assign(source, { produced: 0, closed: 0, handled: 0 });
    container = new Container();
    container.load(memoryModule());
    mediator = createMediator(container, {
      handlers: [NumbersHandler, BrokenHandler],
      middleware: recommendedStack({
        rules: [rule(Numbers, (ctx) => ctx.meta.actor?.id === 'alice'), rule(Broken, () => true)],
      }),
    });
    audit = container.get<MemoryAuditStore>(TOKENS.AuditStore);
  });

  const all = async (items: AsyncIterable<number>) => {
    const seen: number[] = [];
    for await (const n of items) seen.push(n);
    return seen;
  };

  it('should stream every item, then close the source', async () => {
    const opened = await mediator.stream(Numbers.from({ to: 5 }), alice);
    if (!opened.ok) return expect.fail(JSON.stringify(opened));
    expect(await all(opened.value)).to.deep.equal([1, 2, 3, 4, 5]);
    expect(source).to.deep.include({ produced: 5, closed: 1 });
  });

  it('should produce only what the caller pulls, and close the source when it stops early', async () => {
    const opened = await mediator.stream(Numbers.from({ to: 1_000_000 }), alice);
    if (!opened.ok) return expect.fail(JSON.stringify(opened));
    const seen: number[] = [];
    for await (const n of opened.value) {
      seen.push(n);
      if (n === 3) break;
    }
    expect(seen).to.deep.equal([1, 2, 3]);
    expect(source, 'nothing produced ahead of the caller').to.deep.include({ produced: 3, closed: 1 });
  });

  it('should stop at an abort between items and close the source', async () => {
    const abort = new AbortController();
    const opened = await mediator.stream(Numbers.from({ to: 1_000 }), { ...alice, signal: abort.signal });
    if (!opened.ok) return expect.fail(JSON.stringify(opened));
    const seen: number[] = [];
    const iterating = (async () => {
      for await (const n of opened.value) {
        seen.push(n);
        if (n === 2) abort.abort(new Error('client went away'));
      }
    })();
    await expect(iterating).to.be.rejectedWith('client went away');
    expect(seen).to.deep.equal([1, 2]);
    expect(source.closed).to.equal(1);
    expect(source.produced).to.be.at.most(3);
  });

  it('should audit the opening (even of a query), and apply no idempotency', async () => {
    const opened = await mediator.stream(Numbers.from({ to: 2 }), { ...alice, idempotencyKey: 'stream-1' });
    if (!opened.ok) return expect.fail(JSON.stringify(opened));
    await all(opened.value);
    const again = await mediator.stream(Numbers.from({ to: 2 }), { ...alice, idempotencyKey: 'stream-1' });
    expect(again).to.deep.include({ ok: true }).and.not.have.property('replayed');
    expect(source.handled, 'both openings ran the handler').to.equal(2);
    const records = await audit.list();
    expect(records.map((r) => `${r.type}:${r.outcome}`)).to.deep.equal(['Numbers:ok', 'Numbers:ok']);
  });

  it('should answer validation and policy failures before the handler runs', async () => {
    const invalid = await mediator.stream(Numbers.from({ to: -1 }), alice);
    expect(!invalid.ok && invalid.failure.kind).to.equal('validation');
    const denied = await mediator.stream(Numbers.from({ to: 2 }), { actor: { id: 'mallory' } });
    expect(!denied.ok && denied.failure.kind).to.equal('forbidden');
    expect(source.handled).to.equal(0);
    expect((await audit.list()).map((r) => r.outcome)).to.deep.equal(['forbidden']);
  });

  it('should say how to fix a handler that returns something that is not an async iterable', async () => {
    const opening = mediator.stream(Broken.from({}), alice);
    await expect(opening).to.be.rejectedWith(UseCaseError, /return ok\(items\) where items is an async iterable/);
  });

  it('should run a custom middleware when a stream opens unless its rules say stream: false', async () => {
    const ran: string[] = [];
    const named = (name: string, rules: MiddlewareRules) =>
      withRules(
        Object.defineProperty(
          async (_ctx: Context, next: Next) => {
            ran.push(name);
            return next();
          },
          'name',
          { value: name },
        ),
        rules,
      );
    const streaming = createMediator(container, {
      handlers: [NumbersHandler],
      middleware: [
        ...recommendedStack({ rules: [rule(Numbers, () => true)] }),
        named('timing', {}),
        named('cacheWarmer', { stream: false }),
      ],
    });
    const opened = await streaming.stream(Numbers.from({ to: 1 }), alice);
    if (!opened.ok) return expect.fail(JSON.stringify(opened));
    await all(opened.value);
    expect(ran, 'a custom middleware takes part; one that says stream: false does not').to.deep.equal(['timing']);
    await streaming.send(Numbers.from({ to: 1 }), alice);
    expect(ran.slice(1), 'both run on a plain send').to.deep.equal(['timing', 'cacheWarmer']);
  });
});
