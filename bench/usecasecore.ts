// usecasecore rows: the empty stack, and the recommended seven-middleware stack on memory adapters, without and
// with an idempotency key.
import 'reflect-metadata';
import { Container, injectable } from 'inversify';
import * as v from 'valibot';
import { memoryModule, type MemoryAuditStore } from '../adapters/memory/index.js';
import { Command, TOKENS, createMediator, handles, type Handler, type Mediator } from '../lib/index.js';
import { recommendedStack, rule } from '../middleware/index.js';
import { check, type Case } from './harness.js';
import { INPUT, isExpected, trivial, type Reply } from './peers.js';

export class Reserve extends Command(v.object({ productId: v.string(), qty: v.number() }))<Reply['value']> {}

@handles(Reserve)
@injectable()
export class ReserveHandler implements Handler<Reserve> {
  handle(cmd: Reserve) {
    return trivial.handle(cmd);
  }
}

const ACTOR = { id: 'bench-user' };

/**
 * The empty stack. `from()` only wraps untrusted input for validation() to parse: with no validation in the stack
 * the handler sees a request without fields. So the main row constructs the request directly (`new Reserve(input)`,
 * the trusted path, as the peers do with `new XCommand(...)`), and a second row times `Reserve.from(input)`.
 */
export function emptyStackCase(construct: 'new' | 'from'): Case {
  const mediator = createMediator(new Container(), { handlers: [ReserveHandler], middleware: [] });
  const run =
    construct === 'new'
      ? () => mediator.send(new Reserve(INPUT), { actor: ACTOR })
      : () => mediator.send(Reserve.from(INPUT), { actor: ACTOR });
  return {
    id: construct === 'new' ? 'ucc-empty' : 'ucc-empty-from',
    label:
      construct === 'new'
        ? 'usecasecore, empty stack (`new Reserve(input)`)'
        : 'usecasecore, empty stack (`Reserve.from(input)`)',
    run,
    async verify() {
      check(mediator.describe(Reserve).middleware.length === 0, 'empty stack is not empty');
      const result = await run();
      if (construct === 'new') check(isExpected(result), `empty stack returned ${JSON.stringify(result)}`);
      // from() without validation: the handler runs but sees no parsed fields.
      else
        check(
          result.ok && result.value.productId === undefined,
          `empty stack (from) returned ${JSON.stringify(result)}`,
        );
    },
  };
}

interface Full {
  container: Container;
  mediator: Mediator;
}

function fullStack(): Full {
  const container = new Container();
  container.load(memoryModule());
  const mediator = createMediator(container, {
    handlers: [ReserveHandler],
    middleware: recommendedStack({ rules: [rule(Reserve, () => true)] }),
  });
  return { container, mediator };
}

const FULL_NAMES = ['validation', 'unitOfWork', 'audit', 'idempotency', 'policy', 'transition', 'publish'];

/**
 * The recommended stack on memory adapters. The memory adapters keep every audit record and idempotency row, so
 * state grows over the run (tens of MB, kept on purpose: it is what the adapter does). `fresh` rebuilds container
 * + mediator before every batch instead: on Node 20 that makes every promise in the process slower and slower,
 * because each MemoryUnitOfWork enables its own AsyncLocalStorage and Node never drops an enabled one (README).
 */
export function fullStackCase(options: { idempotent: boolean; fresh: boolean }): Case {
  let full = fullStack();
  let keys = 0;
  const run = options.idempotent
    ? () => full.mediator.send(Reserve.from(INPUT), { actor: ACTOR, idempotencyKey: `bench-${++keys}` })
    : () => full.mediator.send(Reserve.from(INPUT), { actor: ACTOR });
  return {
    id: options.idempotent ? 'ucc-full-idem' : 'ucc-full',
    label: options.idempotent
      ? 'usecasecore, 7 middleware, memory, fresh idempotency key'
      : 'usecasecore, 7 middleware, memory, no key',
    run,
    async verify() {
      const { mediator, container } = full;
      const names = mediator.describe(Reserve).middleware;
      check(names.join() === FULL_NAMES.join(), `unexpected stack ${names.join()}`);
      const audit = container.get<MemoryAuditStore>(TOKENS.AuditStore);
      const before = (await audit.list()).length;
      const result = await run();
      check(isExpected(result), `full stack returned ${JSON.stringify(result)}`);
      const records = await audit.list();
      check(
        records.length === before + 1 && records.at(-1)!.outcome === 'ok',
        'full stack did not append one ok audit record',
      );
      check(JSON.stringify(records.at(-1)!.payload) === JSON.stringify(INPUT), 'audit payload is not the parsed input');
      if (options.idempotent) {
        // The key just used must replay (so the first send claimed and stored a record).
        const replay = await mediator.send(Reserve.from(INPUT), { actor: ACTOR, idempotencyKey: `bench-${keys}` });
        check(replay.ok && replay.replayed === true, 'idempotency key did not replay: no record was stored');
      }
      // Validation runs: a bad body is rejected before the handler.
      const bad = await mediator.send(Reserve.from({ productId: 1, qty: 'x' }), { actor: ACTOR });
      check(!bad.ok && bad.failure.kind === 'validation', 'validation did not reject a bad body');
    },
    ...(options.fresh
      ? {
          reset: () => {
            full = fullStack();
          },
        }
      : {}),
  };
}
