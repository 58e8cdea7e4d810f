// Consumers: delivered events and jobs run through the mediator pipeline; the inbox makes each take effect once.
import type { AnyResult } from '../core/context.js';
import { subscriptionOf, type HandlerClass } from '../core/handler.js';
import type { Mediator } from '../core/mediator.js';
import { UseCaseError } from '../core/errors.js';
import { backoff, settleJobAlone } from '../jobs/jobs.js';
import type { Delivery, Disposition, MessageSource, Ports, QueueOptions } from '../core/ports.js';
import { typeOf, type RequestClass } from '../core/request.js';

/** Options of `consume()` and `work()`. */
export interface ConsumerOptions {
  /** Deliveries in flight at once. Default 16. */
  readonly prefetch?: number;
  /** Deliveries of one message before it is dead-lettered. Default 5. */
  readonly maxAttempts?: number;
}

/**
 * Consumes events into the queue `queue` and sends each through the mediator (add `inbox()` to the stack).
 * @example await consume(mediator, source, 'billing', [OrderPaid]);   // @handles(OrderPaid) class ... in the mediator
 */
export function consume(
  mediator: Mediator,
  source: MessageSource,
  queue: string,
  events: readonly RequestClass[],
  options: ConsumerOptions = {},
) {
  return serve(mediator, source, queueOptions(queue, bindingsOf('event', events), options), events);
}

/**
 * Runs jobs (commands staged with `ctx.enqueue`) of the given types from their shared job queues, each with its
 * type's retry policy (`static retry`, else `options.maxAttempts` and the source's backoff). With `jobs()` in the
 * stack their states are recorded; a job dead-lettered here is settled `dead` (and its `onFailure` sent).
 * @example
 * const workers = await work(mediator, source, [SendReceipt]); …; await Promise.all(workers.map((w) => w.close()));
 */
export function work(
  mediator: Mediator,
  source: MessageSource,
  jobs: readonly RequestClass[],
  options: ConsumerOptions = {},
) {
  for (const job of jobs) checkTracked(mediator, job);
  return Promise.all(
    jobs.map((job) => {
      const { retry } = job;
      const queue: QueueOptions = {
        ...queueOptions(source.jobQueue(typeOf(job)), bindingsOf('job', [job]), options),
        ...(retry?.attempts === undefined ? {} : { maxAttempts: retry.attempts }),
        ...(retry ? { retryDelayMs: backoff(retry) } : {}),
      };
      return serve(mediator, source, queue, [job], { jobs: true });
    }),
  );
}

/**
 * With a JobStore bound, `ctx.enqueue` records jobs `queued`: a worker whose stack lacks jobs() would leave them
 * so for good and never send their callbacks. Said at start-up rather than found out from a stuck job.
 */
function checkTracked(mediator: Mediator, job: RequestClass): void {
  if (!mediator.ports.jobs || mediator.describe(job).middleware.includes('jobs')) return;
  throw new UseCaseError(
    'bad_stack',
    `work() runs ${typeOf(job)} through a stack without jobs(), but a JobStore is bound: its jobs would stay queued ` +
      'and their callbacks never run — use recommendedStack({ rules, inbox: true }), or add jobs() after validation()',
  );
}

/**
 * What a consumer does with an outcome: successes and business outcomes are final (ack); a request that can never
 * parse is dead-lettered; transient failures (and exceptions, by the source) are retried.
 */
export function dispositionOf(result: AnyResult): Disposition {
  if (result.ok) return { action: 'ack' };
  switch (result.failure.kind) {
    case 'validation':
      return { action: 'dead', reason: result.failure.message };
    case 'unavailable':
    case 'conflict':
    case 'in_progress':
      return { action: 'retry', reason: result.failure.message };
    default:
      return { action: 'ack' };
  }
}

function queueOptions(queue: string, bindings: QueueOptions['bindings'], options: ConsumerOptions): QueueOptions {
  return { queue, bindings, prefetch: options.prefetch ?? 16, maxAttempts: options.maxAttempts ?? 5 };
}

function bindingsOf(kind: 'event' | 'job', types: readonly RequestClass[]): QueueOptions['bindings'] {
  return types.map((type) => ({ kind, type: typeOf(type) }));
}

/** What a queue's deliveries run: an event subscriber (@on) rather than the type's handler; a job, with its state. */
interface Serving {
  readonly subscriber?: HandlerClass | undefined;
  readonly jobs?: boolean;
}

/** Consumes `queue`, sending each delivery of `types` through the mediator. */
function serve(
  mediator: Mediator,
  source: MessageSource,
  queue: QueueOptions,
  types: readonly RequestClass[],
  serving: Serving = {},
) {
  return source.consume(queue, dispatcher(mediator, queue, types, serving));
}

/**
 * Runs every event subscriber (@on) of the mediator: one queue per subscriber class, `<service>.<ClassName>` (or
 * `<service>.<its static subscription>`: pin it if your build renames classes), bound to its events' types, so each
 * subscriber gets its own copy of each event and its own retries, dead letters and inbox records — one subscriber's
 * failure never re-runs another. Resolves with the queue names once every queue consumes.
 * @example await subscribe(mediator, container.get(TOKENS.MessageSource), 'shop'); // shop.SendReceipt, shop.Ledger…
 */
export async function subscribe(
  mediator: Mediator,
  source: MessageSource,
  service: string,
  options: ConsumerOptions = {},
): Promise<string[]> {
  const events = new Map<HandlerClass, RequestClass[]>();
  for (const { event, handler } of mediator.subscriptions())
    events.set(handler, [...(events.get(handler) ?? []), event]);
  const queues: string[] = [];
  for (const [handler, types] of events) {
    const queue = `${service}.${subscriptionOf(handler)}`;
    await serve(mediator, source, queueOptions(queue, bindingsOf('event', types), options), types, {
      subscriber: handler,
    });
    queues.push(queue);
  }
  return queues;
}

function dispatcher(mediator: Mediator, queue: QueueOptions, types: readonly RequestClass[], serving: Serving) {
  const { queue: consumer, maxAttempts } = queue;
  const jobs = serving.jobs === true;
  const handle = handler(mediator, consumer, types, serving);
  const fields = (delivery: Delivery, reason: unknown) => ({
    queue: consumer,
    messageId: delivery.message.id,
    type: delivery.message.type,
    attempt: delivery.attempt,
    reason,
  });
  // The source dead-letters a message on `dead`, or on a retry or an exception at its last attempt. A job is settled
  // `dead` first (with its onFailure callback); when that cannot be recorded, the message goes back in line instead,
  // uncounted, rather than leave its job `running` for good. Either way it is said once.
  const giveUp = async (delivery: Delivery, reason: unknown): Promise<Disposition | undefined> => {
    const { logger } = mediator.ports;
    if (jobs) {
      try {
        await settleDead(mediator.ports, delivery, reason);
      } catch (error) {
        logger?.warn('consumer: could not record a dead job; its message goes back in line', {
          ...fields(delivery, reason),
          error,
        });
        return { action: 'requeue', reason: 'its dead state could not be recorded' };
      }
    }
    logger?.error('consumer: dead-lettered a message; it waits in the dead queue', fields(delivery, reason));
    return undefined;
  };
  return async (delivery: Delivery): Promise<Disposition> => {
    let disposition: Disposition;
    try {
      disposition = await handle(delivery);
    } catch (error) {
      const requeued = delivery.attempt >= maxAttempts ? await giveUp(delivery, error) : undefined;
      if (requeued) return requeued;
      throw error;
    }
    const last = disposition.action === 'retry' && delivery.attempt >= maxAttempts;
    if (disposition.action === 'dead' || last) return (await giveUp(delivery, disposition.reason)) ?? disposition;
    return disposition;
  };
}

/**
 * Settles a dead-lettered job `dead` in a transaction of its own, with its onFailure callback. The record says why
 * in words its tenant may read (GetJob): a failure's message, never an exception's, which may quote SQL and values.
 */
async function settleDead(ports: Ports, delivery: Delivery, reason: unknown): Promise<void> {
  if (!ports.jobs || !ports.unitOfWork || !ports.outbox) return;
  const why =
    typeof reason === 'string'
      ? reason
      : `the handler threw ${reason instanceof Error ? `an ${reason.name}` : 'a value'} ` +
        '(its message is in the logs, not here)';
  const attempts = `${delivery.attempt} attempt${delivery.attempt === 1 ? '' : 's'}`;
  const message = `dead-lettered after ${attempts}: ${why}`.slice(0, 1_000);
  await settleJobAlone(
    ports,
    delivery.message,
    { state: 'dead', failure: { kind: 'dead', message } },
    delivery.attempt,
  );
}

function handler(mediator: Mediator, consumer: string, types: readonly RequestClass[], serving: Serving) {
  const byName = new Map(types.map((t) => [typeOf(t), t]));
  return async (delivery: Delivery): Promise<Disposition> => {
    const { message } = delivery;
    const type = byName.get(message.type);
    if (!type)
      return {
        action: 'dead',
        reason: `${consumer} takes no "${message.type}" — add its class to the consumer's types`,
      };
    const { actor, actorRoles, tenant, requestId } = message.headers;
    const handle = async () =>
      dispositionOf(
        await mediator.send(type.from(message.payload), {
          message: { id: message.id, consumer },
          tenant,
          requestId,
          actor: actor === undefined ? undefined : { id: actor, roles: actorRoles ? actorRoles.split(',') : [] },
          subscriber: serving.subscriber,
          job: serving.jobs ? message : undefined,
        }),
      );
    const telemetry = mediator.ports.telemetry;
    return telemetry?.consuming ? telemetry.consuming(delivery, consumer, handle) : handle();
  };
}
