// The broker objects the library declares: exchanges, job queues, consumer queues with their retry and dead queues.
import type { Channel, Options } from 'amqplib';
import { UseCaseError } from '../../lib/core/errors.js';
import type { OutboxMessage } from '../../lib/core/ports.js';
import { queueNames, type Exchanges } from '../../lib/core/queues.js';

export { DEFAULT_EXCHANGES, type Exchanges } from '../../lib/core/queues.js';

/** Where a message goes: its exchange and routing key. */
export function routeOf(
  exchanges: Exchanges,
  message: Pick<OutboxMessage, 'kind' | 'type'>,
): { exchange: string; routingKey: string } {
  return { exchange: message.kind === 'event' ? exchanges.events : exchanges.jobs, routingKey: message.type };
}

/** Declares the three exchanges (idempotent). */
export async function assertExchanges(channel: Channel, exchanges: Exchanges): Promise<void> {
  await channel.assertExchange(exchanges.events, 'topic', { durable: true });
  await channel.assertExchange(exchanges.jobs, 'direct', { durable: true });
  await channel.assertExchange(exchanges.dead, 'direct', { durable: true });
}

/**
 * The type of the queues the library declares. `quorum` (the default) is RabbitMQ's replicated durable queue, the
 * one it recommends (classic mirroring is gone in RabbitMQ 4); `classic` keeps queues declared by earlier versions
 * of this library, which had no `x-queue-type`, usable.
 */
export type QueueType = 'quorum' | 'classic';

/** Whether `value` names a queue type (options and flags are checked with it before anything is declared). */
export function isQueueType(value: unknown): value is QueueType {
  return value === 'quorum' || value === 'classic';
}

/**
 * How the library declares its queues (`amqpModule({ queueType, deliveryLimit })`). The bus (job queues) and the
 * source (consumer and job queues) must agree, or the second to declare a queue is refused.
 * @example new AmqpSource(connection, { exchanges: DEFAULT_EXCHANGES, queueType: 'quorum', deliveryLimit: 10 });
 */
export interface QueueDeclaration {
  /** Default `quorum`. A queue's type cannot change once declared: see `assertQueue`. */
  readonly queueType?: QueueType;
  /**
   * Quorum queues only: redeliveries of one message copy before the broker dead-letters it into `<queue>.dead`,
   * e.g. a message that crashes its consumer's process every time, which the library's own attempt count never
   * sees (the process dies before it republishes). Each retry is a new copy, so this counts only lost deliveries
   * (crashes, dropped connections, an unconfirmed retry put back), never `maxAttempts`' attempts. Default 20,
   * RabbitMQ 4's own default. Fixed at declaration: changing it later needs the queue deleted.
   */
  readonly deliveryLimit?: number;
}

/** The default `deliveryLimit`: RabbitMQ 4 sets 20 on quorum queues too. */
export const DEFAULT_DELIVERY_LIMIT = 20;

/**
 * The arguments of `<queue>` (`consumer`), `<queue>.retry` and `<queue>.dead`, per queue type. Quorum queues get
 * at-least-once dead-lettering, which needs `x-overflow: reject-publish`: what a quorum queue dead-letters (every
 * retry, expiring from `.retry` into its queue; a message over the delivery limit, into `.dead`) is otherwise
 * moved at most once, lost if the target does not take it (a queue being deleted or declared again, a leader
 * election). With it the message stays in its queue until the target confirmed it. Without a length limit
 * (none is set) reject-publish never refuses anything; under a policy's limit publishers get nacks, which the
 * relay and the retries retry, rather than the oldest messages being dropped.
 */
function argumentsOf(role: 'consumer' | 'retry' | 'dead', declaration: QueueDeclaration): Record<string, unknown> {
  if ((declaration.queueType ?? 'quorum') === 'classic') return { 'x-queue-type': 'classic' };
  const atLeastOnce = { 'x-dead-letter-strategy': 'at-least-once', 'x-overflow': 'reject-publish' };
  switch (role) {
    case 'consumer':
      return {
        'x-queue-type': 'quorum',
        'x-delivery-limit': declaration.deliveryLimit ?? DEFAULT_DELIVERY_LIMIT,
        ...atLeastOnce,
      };
    // Per-message TTL (`expiration`), which the retry delay is, works on quorum queues since RabbitMQ 3.10 (checked
    // on 3.10.8: expired copies go back into the queue, in order, as on classic). Nothing consumes `.retry`, so no
    // delivery limit.
    case 'retry':
      return { 'x-queue-type': 'quorum', ...atLeastOnce };
    // No delivery limit: with no dead-letter exchange of its own, a dead letter read and put back too often (a tool
    // browsing with get + requeue) would be dropped. (RabbitMQ 4 sets its default of 20 here all the same.)
    case 'dead':
      return { 'x-queue-type': 'quorum' };
  }
}

/**
 * Declares a durable queue bound to the given routes, with `<queue>.retry` (messages wait there for their
 * `expiration`, then dead-letter back into the queue) and `<queue>.dead` (bound to the dead-letter exchange), all
 * of `declaration.queueType` (default quorum). A queue that exists with another type or other arguments makes the
 * broker close the channel (406 PRECONDITION_FAILED); this rejects with a UseCaseError (`misuse`) saying how to fix
 * it.
 * @example await assertQueue(channel, DEFAULT_EXCHANGES, 'billing', [{ kind: 'event', type: 'order.placed' }]);
 */
export async function assertQueue(
  channel: Channel,
  exchanges: Exchanges,
  queue: string,
  bindings: ReadonlyArray<Pick<OutboxMessage, 'kind' | 'type'>>,
  declaration: QueueDeclaration = {},
): Promise<void> {
  await assertExchanges(channel, exchanges);
  const declare = (name: string, role: 'consumer' | 'retry' | 'dead', options: Options.AssertQueue = {}) =>
    channel
      .assertQueue(name, { durable: true, ...options, arguments: argumentsOf(role, declaration) })
      .catch((error: unknown) => {
        throw refusal(error, queue, declaration.queueType ?? 'quorum') ?? error;
      });
  const names = queueNames(exchanges);
  await declare(queue, 'consumer', { deadLetterExchange: exchanges.dead, deadLetterRoutingKey: queue });
  await declare(names.retry(queue), 'retry', { deadLetterExchange: '', deadLetterRoutingKey: queue });
  await declare(names.dead(queue), 'dead');
  await channel.bindQueue(names.dead(queue), exchanges.dead, queue);
  for (const binding of bindings) {
    const { exchange, routingKey } = routeOf(exchanges, binding);
    await channel.bindQueue(queue, exchange, routingKey);
  }
}

/**
 * The broker's "inequivalent arg" refusal (a queue exists with another type or other arguments) as a UseCaseError
 * saying what differs and how to fix it; undefined for any other error. The broker words it as e.g.
 * `inequivalent arg 'x-queue-type' for queue 'q' in vhost '/': received 'quorum' but current is none`.
 */
function refusal(error: unknown, base: string, declaring: QueueType): UseCaseError | undefined {
  const said = error instanceof Error ? error.message : String(error);
  const found = said.match(
    /inequivalent arg '([^']+)' for queue '([^']+)' in vhost '[^']*': received (.+?) but current is (.+?)"?$/,
  );
  if (!found) return undefined;
  const [, arg, queue, received, current] = found as unknown as [string, string, string, string, string];
  const valueOf = (words: string) => words.match(/'([^']*)'/)?.[1]; // "the value '20' of type 'byte'", or "none"
  const [wanted, existing] = [valueOf(received), valueOf(current)];
  const deleteThem =
    `drain the queues ${base}, ${base}.retry and ${base}.dead (or move their messages, e.g. with a shovel) and ` +
    `delete them (rabbitmqctl delete_queue <name>), so they are declared again`;
  // The broker names the first argument that differs, often not x-queue-type (it checks x-overflow before). An
  // argument this app sets on quorum queues only, set on one side and not the other, tells the type apart.
  const other = declaring === 'quorum' ? 'classic' : 'quorum';
  const quorumOnly = ['x-overflow', 'x-dead-letter-strategy', 'x-delivery-limit'].includes(arg);
  const missing = declaring === 'quorum' ? existing === undefined : wanted === undefined;
  // none: classic, as versions before queueType declared them.
  const is = arg === 'x-queue-type' ? (existing ?? 'classic') : quorumOnly && missing ? other : undefined;
  if (is) {
    const seen =
      arg === 'x-queue-type'
        ? `exists as a ${is} queue`
        : `is most likely a ${is} queue (${arg} is ${existing ?? 'unset'} there, ${wanted ?? 'unset'} here)`;
    return new UseCaseError(
      'misuse',
      `RabbitMQ queue '${queue}' ${seen}, but this app declares it ${declaring} (queueType: '${declaring}'), and a ` +
        `queue's type cannot change. Either pass queueType: '${is}' to amqpModule() to keep using it, or ` +
        `${deleteThem} as ${declaring} queues.`,
      { cause: error },
    );
  }
  const keep =
    arg === 'x-delivery-limit' && existing ? `pass deliveryLimit: ${existing} to amqpModule()` : 'declare it as before';
  return new UseCaseError(
    'misuse',
    `RabbitMQ queue '${queue}' exists with ${arg} ${existing ?? 'unset'}, but this app declares it with ` +
      `${wanted ?? 'none'}, and a queue's arguments cannot change. Either ${keep}, or ${deleteThem}.`,
    { cause: error },
  );
}
