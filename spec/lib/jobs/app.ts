// A job with a durable callback on Postgres and RabbitMQ, for the spec and for the process it kills (child.ts).
import { Container, injectable } from 'inversify';
import type { Knex } from 'knex';
import * as v from 'valibot';
import { amqpModule, type Exchanges } from '../../../adapters/amqp/index.js';
import { KnexUnitOfWork, knexModule } from '../../../adapters/knex/index.js';
import {
  Command,
  createMediator,
  handles,
  ok,
  type Context,
  type Handler,
  type JobHandle,
} from '../../../lib/core/index.js';
import { everyone, recommendedStack } from '../../../middleware/index.js';
import { queueType } from '../../support/broker.js';

/** The job: writes one effect row and returns its id. */
export class Touch extends Command(v.object({ id: v.string() }))<{ touched: string }> {}
/** Its onSuccess callback: writes one callback row with the job id. */
export class Touched extends Command(
  v.object({ jobId: v.string(), type: v.string(), payload: v.unknown(), attempts: v.number(), result: v.unknown() }),
) {}
/** Enqueues a Touch with Touched as its callback. */
export class Start extends Command(v.object({ id: v.string() }))<JobHandle> {}

/** Called after the Touch job's commit (the child exits there, before anything else happens). */
export const hooks = { afterTouch: (): void => undefined };

@handles(Start)
@injectable()
class StartHandler implements Handler<Start> {
  handle(cmd: Start, ctx: Context<Start>) {
    return ok(ctx.enqueue(new Touch({ id: cmd.id }), { onSuccess: Touched }));
  }
}

/** Writes a row of `effects` in the send's transaction. */
async function effect(ctx: Context, kind: string, id: string): Promise<void> {
  const uow = ctx.ports.unitOfWork as KnexUnitOfWork;
  await (await uow.db())('effects').insert({ kind, id });
}

@handles(Touch)
@injectable()
class TouchHandler implements Handler<Touch> {
  async handle(job: Touch, ctx: Context<Touch>) {
    await effect(ctx, 'touch', job.id);
    ctx.afterCommit(() => hooks.afterTouch());
    return ok({ touched: job.id });
  }
}

@handles(Touched)
@injectable()
class TouchedHandler implements Handler<Touched> {
  async handle(callback: Touched, ctx: Context<Touched>) {
    await effect(ctx, 'callback', callback.jobId);
    return ok(undefined);
  }
}

/** The mediator on `db` (the library's tables and `effects`) and the broker. */
export function jobsApp(db: Knex, url: string, exchanges: Exchanges) {
  const container = new Container();
  container.load(
    knexModule({ knex: db }),
    amqpModule({ url, exchanges, retryDelayMs: () => 50, queueType: queueType() }),
  );
  const mediator = createMediator(container, {
    handlers: [StartHandler, TouchHandler, TouchedHandler],
    middleware: recommendedStack({ rules: [everyone(Start), everyone(Touch), everyone(Touched)], inbox: true }),
  });
  return { container, mediator };
}
