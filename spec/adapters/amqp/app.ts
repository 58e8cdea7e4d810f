// A mediator on Postgres and RabbitMQ for the fault and scenario specs and their child processes.
import 'reflect-metadata';
import { Container, inject, injectable, type ContainerModule } from 'inversify';
import type { Knex } from 'knex';
import * as v from 'valibot';
import { AmqpConnection, amqpModule, type AmqpModuleOptions, type Exchanges } from '../../../adapters/amqp/index.js';
import { KnexUnitOfWork, knexModule } from '../../../adapters/knex/index.js';
import {
  Command,
  Event,
  TOKENS,
  createMediator,
  handles,
  ok,
  type Context,
  type Handler,
  type Middleware,
} from '../../../lib/core/index.js';
import type { Relay, RelayOptions } from '../../../lib/messaging/index.js';
import { everyone, recommendedStack } from '../../../middleware/index.js';
import { queueType } from '../../support/broker.js';

/**
 * Publishes one `spec.emitted` event carrying `pad` bytes (to make buffering visible in the heap), and with `job`
 * also stages a `Ship` job (a message for the jobs exchange in the same outbox batch).
 */
export class Emit extends Command(
  v.object({ id: v.string(), pad: v.optional(v.number(), 0), job: v.optional(v.boolean(), false) }),
)<{ id: string }> {}
export class Emitted extends Event(v.object({ id: v.string(), pad: v.string() })) {
  static readonly type = 'spec.emitted';
}
/** A job nobody works in these specs: it waits in its job queue, where a spec counts it. */
export class Ship extends Command(v.object({ id: v.string() }))<void> {}

/** The table the Emitted consumer writes its side effect to, in its transaction: one row per effect, any process. */
export const EFFECTS = 'spec_effects';

/** Creates the effects table (in the knex's search path). */
export async function createEffectsTable(db: Knex): Promise<void> {
  await db.schema.createTable(EFFECTS, (t) => {
    t.text('event_id').notNullable().index();
    t.integer('pid').notNullable();
  });
}

/** Ids the Emitted consumer processed, in this process. */
export const received: string[] = [];

@handles(Emit)
@injectable()
class EmitHandler implements Handler<Emit> {
  handle(cmd: Emit, ctx: Context<Emit>) {
    ctx.publish(new Emitted({ id: cmd.id, pad: 'x'.repeat(cmd.pad) }));
    if (cmd.job) ctx.enqueue(new Ship({ id: cmd.id }));
    return ok({ id: cmd.id });
  }
}

@handles(Emitted)
@injectable()
class EmittedHandler implements Handler<Emitted> {
  constructor(@inject(KnexUnitOfWork) private readonly uow: KnexUnitOfWork) {}
  async handle(event: Emitted) {
    await (await this.uow.db())(EFFECTS).insert({ event_id: event.id, pid: process.pid });
    received.push(event.id);
    return ok(undefined);
  }
}

@handles(Ship)
@injectable()
class ShipHandler implements Handler<Ship> {
  handle() {
    return ok(undefined);
  }
}

/** Options of `faultApp`. */
export interface FaultAppOptions {
  /** false binds a relay that never publishes (a process about to die, or a spec that runs its own relay). */
  readonly relay?: boolean;
  readonly relayOptions?: RelayOptions;
  /** How long this process's relay leases the rows it claims. Default the outbox's 30 s. */
  readonly claimLeaseMs?: number;
  readonly amqp?: Partial<AmqpModuleOptions>;
  /** Middleware put right after validation, around the transaction: they see a send after its commit. */
  readonly outer?: readonly Middleware[];
  /** Middleware put innermost (inside the transaction, after the inbox recorded the message). */
  readonly inner?: readonly Middleware[];
  /** Observers (tracing) put in front of the whole stack. */
  readonly observers?: readonly Middleware[];
  /** More container modules (e.g. otelModule()), loaded with the adapters. */
  readonly modules?: readonly ContainerModule[];
}

/** The mediator on `db` and the broker, serving Emit, Emitted (its consumer) and Ship. */
export function faultApp(db: Knex, url: string, exchanges: Exchanges, options: FaultAppOptions = {}) {
  const container = new Container();
  container.load(
    knexModule({ knex: db, ...(options.claimLeaseMs ? { claimLeaseMs: options.claimLeaseMs } : {}) }),
    // Batches of 100: what a failing pass holds (100 × 10 kB) stays well below the outage spec's 5 MB heap bound.
    amqpModule({
      url,
      exchanges,
      relay: { backoffMs: [20, 500], batchSize: 100, ...options.relayOptions },
      retryDelayMs: () => 50,
      queueType: queueType(),
      ...options.amqp,
    }),
    ...(options.modules ?? []),
  );
  if (options.relay === false)
    container.rebind<Relay>(TOKENS.Relay).toConstantValue({ wake: () => undefined, drain: async () => undefined });
  const stack = recommendedStack({ rules: [everyone(Emit), everyone(Emitted), everyone(Ship)], inbox: true });
  const mediator = createMediator(container, {
    handlers: [EmitHandler, EmittedHandler, ShipHandler],
    // validation stays first (checked at createMediator); `outer` goes around the transaction, `inner` inside it.
    middleware: [
      ...(options.observers ?? []),
      ...stack.slice(0, 1),
      ...(options.outer ?? []),
      ...stack.slice(1),
      ...(options.inner ?? []),
    ],
  });
  return { container, mediator, connection: container.get(AmqpConnection) };
}
