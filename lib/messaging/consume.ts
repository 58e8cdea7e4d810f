// Consumers: delivered events run through the mediator pipeline (the inbox makes each take effect once); the source
// carries out the disposition the failure table gives each outcome.
import type { HandlerClass, SendOptions } from '../core/context.js';
import { UseCaseError } from '../core/errors.js';
import { FAILURES } from '../core/failures.js';
import type { Mediator } from '../core/mediator.js';
import { MIDDLEWARE } from '../core/names.js';
import { typeOf, type RequestClass, type RetryPolicy } from '../core/request.js';
import type { AnyResult } from '../core/result.js';
import { settlement, thrown } from './dispositions.js';
import type { Delivery, Disposition, MessageSource, MessagingTelemetry, QueueOptions } from './ports.js';

/** Options of `consume()`, `subscribe()` and `work()`. */
export interface ConsumerOptions {
  /** Deliveries in flight at once. Default 16. */
  readonly prefetch?: number;
  /** Deliveries of one message before it is dead-lettered. Default 5. */
  readonly maxAttempts?: number;
  /**
   * `work()` only: a retry policy for every job type it runs, in place of their own `static retry` (a test that
   * must not wait out a production backoff, say).
   */
  readonly retry?: RetryPolicy;
}

/** How one delivery is handled: what the source should do with it. */
export type DeliveryHandler = (delivery: Delivery) => Promise<Disposition>;

/**
 * Consumes events into the queue `queue` and sends each through the mediator (the stack must have `inbox()`).
 * @example await consume(mediator, source, 'billing', [OrderPaid]);   // @handles(OrderPaid) class ... in the mediator
 */
export function consume(
  mediator: Mediator,
  source: MessageSource,
  queue: string,
  events: readonly RequestClass[],
  options: ConsumerOptions = {},
) {
  const declared = queueOptions(queue, 'event', events, options);
  return serve(mediator, source, declared, events, sendEach(mediator, declared, events));
}

/**
 * Runs every event subscriber (@on) of the mediator: one queue per subscriber class, `<service>.<ClassName>` (or
 * `<service>.<its static subscription>`: pin it if your build renames classes), bound to its events' types, so each
 * subscriber gets its own copy of each event and its own retries, dead letters and inbox records — one subscriber's
 * failure never re-runs another. Resolves with the queue names once every queue consumes; `close()` on them stops
 * every one (the deliveries under way finish first).
 * @example
 * const queues = await subscribe(mediator, container.get(TOKENS.MessageSource), 'shop'); // shop.SendReceipt, …
 * await queues.close(); // on shutdown
 */
export async function subscribe(
  mediator: Mediator,
  source: MessageSource,
  service: string,
  options: ConsumerOptions = {},
): Promise<Subscribed> {
  const events = new Map<HandlerClass, RequestClass[]>();
  for (const { event, handler } of mediator.subscriptions())
    events.set(handler, [...(events.get(handler) ?? []), event]);
  const queues: string[] = [];
  const consumers: Array<{ close(): Promise<void> }> = [];
  for (const [subscriber, types] of events) {
    const queue = queueOptions(mediator.ports.queues.subscriber(service, subscriber), 'event', types, options);
    consumers.push(await serve(mediator, source, queue, types, sendEach(mediator, queue, types, { subscriber })));
    queues.push(queue.queue);
  }
  return Object.assign(queues, { close: () => Promise.all(consumers.map((c) => c.close())).then(() => undefined) });
}

/** What `subscribe()` resolves to: the queue names, and how to stop consuming them. */
export type Subscribed = string[] & { close(): Promise<void> };

/**
 * A queue's declaration: its bindings (events by type, jobs by command type), prefetch and attempts.
 * @internal
 */
export function queueOptions(
  queue: string,
  kind: 'event' | 'job',
  types: readonly RequestClass[],
  options: ConsumerOptions,
): QueueOptions {
  const bindings = types.map((type) => ({ kind, type: typeOf(type) }));
  return { queue, bindings, prefetch: options.prefetch ?? 16, maxAttempts: options.maxAttempts ?? 5 };
}

/**
 * Consumes `queue` with `handle`, inside the Telemetry port's consumer span, once the stack of every type it takes
 * has `inbox()` (a redelivery must not take effect twice); says once when a message is dead-lettered.
 * @internal
 */
export function serve(
  mediator: Mediator,
  source: MessageSource,
  queue: QueueOptions,
  types: readonly RequestClass[],
  handle: DeliveryHandler,
) {
  for (const type of types) requireInbox(mediator, type);
  const telemetry = mediator.ports.telemetry as MessagingTelemetry | undefined;
  const observed: DeliveryHandler = telemetry?.consuming
    ? (delivery) => telemetry.consuming!(delivery, queue.queue, () => handle(delivery))
    : handle;
  return source.consume(queue, reportingDeadLetters(mediator, queue, observed));
}

function requireInbox(mediator: Mediator, type: RequestClass): void {
  if (mediator.describe(type).middleware.includes(MIDDLEWARE.inbox)) return;
  throw new UseCaseError(
    'bad_stack',
    `${typeOf(type)} is consumed through a stack without inbox(): a message delivered twice (a redelivery after a ` +
      'crash, a duplicate publish) would take effect twice — use recommendedStack({ rules, inbox: true }), or add ' +
      'inbox() after idempotency()',
  );
}

/** The source dead-letters a message on `dead`, or on a retry or an exception at its last attempt: said once. */
function reportingDeadLetters(mediator: Mediator, queue: QueueOptions, handle: DeliveryHandler): DeliveryHandler {
  const report = (delivery: Delivery, reason: unknown) =>
    mediator.ports.logger.error('consumer: dead-lettered a message; it waits in the dead queue', {
      queue: queue.queue,
      messageId: delivery.message.id,
      type: delivery.message.type,
      attempt: delivery.attempt,
      reason,
    });
  const given = (delivery: Delivery, disposition: Disposition) =>
    settlement(disposition, delivery.attempt, queue.maxAttempts).action === 'dead';
  return async (delivery) => {
    let disposition: Disposition;
    try {
      disposition = await handle(delivery);
    } catch (error) {
      if (given(delivery, thrown(error))) report(delivery, error);
      throw error;
    }
    if (given(delivery, disposition)) report(delivery, disposition.reason);
    return disposition;
  };
}

/**
 * What a consumer does with an outcome: a success is done (ack); a failure as the failure table says (`FAILURES`):
 * a request that can never parse is dead-lettered, transient failures are retried, business outcomes are final.
 * @internal
 */
export function dispositionOf(result: AnyResult): Disposition {
  if (result.ok) return { action: 'ack' };
  const action = FAILURES[result.failure.kind].consumer;
  return action === 'ack' ? { action } : { action, reason: result.failure.message };
}

/**
 * Sends a delivered message through the mediator as the request type it names, with its headers' actor, tenant
 * and request id, and the consumer's inbox identity.
 * @internal
 */
export function sendDelivery(
  mediator: Mediator,
  consumer: string,
  type: RequestClass,
  delivery: Delivery,
  options: Pick<SendOptions, 'subscriber' | 'beforeCommit' | 'job'> = {},
): Promise<AnyResult> {
  const { message } = delivery;
  const { actor, actorRoles, tenant, requestId } = message.headers;
  return mediator.send(type.from(message.payload), {
    ...options,
    message: { id: message.id, consumer, attempt: delivery.attempt },
    tenant,
    requestId,
    actor: actor === undefined ? undefined : { id: actor, roles: actorRoles ? actorRoles.split(',') : [] },
  });
}

/**
 * The handler of a queue of `types`: each delivery sent as its type (`dead` for a type the queue does not take).
 * @internal
 */
export function byType(
  consumer: string,
  types: readonly RequestClass[],
  run: (type: RequestClass, delivery: Delivery) => Promise<Disposition>,
): DeliveryHandler {
  const byName = new Map(types.map((t) => [typeOf(t), t]));
  return async (delivery) => {
    const type = byName.get(delivery.message.type);
    if (type) return run(type, delivery);
    return {
      action: 'dead',
      reason: `${consumer} takes no "${delivery.message.type}" — add its class to the consumer's types`,
    };
  };
}

function sendEach(
  mediator: Mediator,
  queue: QueueOptions,
  types: readonly RequestClass[],
  options: Pick<SendOptions, 'subscriber'> = {},
): DeliveryHandler {
  return byType(queue.queue, types, async (type, delivery) =>
    dispositionOf(await sendDelivery(mediator, queue.queue, type, delivery, options)),
  );
}
