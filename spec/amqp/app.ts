// A mediator on Postgres and RabbitMQ for the fault specs and their child processes.
import 'reflect-metadata';
import { Container, injectable } from 'inversify';
import type { Knex } from 'knex';
import * as v from 'valibot';
import { AmqpConnection, amqpModule, type Exchanges } from '../../adapters/amqp/index.js';
import { knexModule } from '../../adapters/knex/index.js';
import {
  Command,
  Event,
  TOKENS,
  createMediator,
  handles,
  ok,
  type Context,
  type Handler,
  type Relay,
} from '../../lib/index.js';
import { everyone, recommendedStack } from '../../middleware/index.js';

/** Publishes one `spec.emitted` event carrying `pad` bytes (to make buffering visible in the heap). */
export class Emit extends Command(v.object({ id: v.string(), pad: v.optional(v.number(), 0) }))<{ id: string }> {}
export class Emitted extends Event(v.object({ id: v.string(), pad: v.string() })) {
  static readonly type = 'spec.emitted';
}

/** Ids the Emitted consumer processed, in this process. */
export const received: string[] = [];

@handles(Emit)
@injectable()
class EmitHandler implements Handler<Emit> {
  handle(cmd: Emit, ctx: Context<Emit>) {
    ctx.publish(new Emitted({ id: cmd.id, pad: 'x'.repeat(cmd.pad) }));
    return ok({ id: cmd.id });
  }
}

@handles(Emitted)
@injectable()
class EmittedHandler implements Handler<Emitted> {
  handle(event: Emitted) {
    received.push(event.id);
    return ok(undefined);
  }
}

/** The mediator on `db` and the broker; `relay: false` binds a relay that never publishes (a process about to die). */
export function faultApp(db: Knex, url: string, exchanges: Exchanges, options: { relay?: boolean } = {}) {
  const container = new Container();
  container.load(
    knexModule({ knex: db }),
    // Batches of 100: what a failing pass holds (100 × 10 kB) stays well below the outage spec's 5 MB heap bound.
    amqpModule({ url, exchanges, relay: { backoffMs: [20, 500], batchSize: 100 }, retryDelayMs: () => 50 }),
  );
  if (options.relay === false)
    container.rebind<Relay>(TOKENS.Relay).toConstantValue({ wake: () => undefined, drain: async () => undefined });
  const mediator = createMediator(container, {
    handlers: [EmitHandler, EmittedHandler],
    middleware: recommendedStack({ rules: [everyone(Emit), everyone(Emitted)], inbox: true }),
  });
  return { container, mediator, connection: container.get(AmqpConnection) };
}
