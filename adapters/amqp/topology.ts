// The broker objects the library declares: exchanges, job queues, consumer queues with their retry and dead queues.
import type { Channel } from 'amqplib';
import type { OutboxMessage } from '../../lib/ports.js';

/** Names of the exchanges (configurable in `amqpModule`). */
export interface Exchanges {
  /** Topic exchange for events; routing key = event type. Default `usecasecore.events`. */
  readonly events: string;
  /** Direct exchange for jobs; routing key = command type. Default `usecasecore.jobs`. */
  readonly jobs: string;
  /** Direct exchange for dead letters; routing key = the consumer queue. Default `usecasecore.dead`. */
  readonly dead: string;
}

export const DEFAULT_EXCHANGES: Exchanges = {
  events: 'usecasecore.events',
  jobs: 'usecasecore.jobs',
  dead: 'usecasecore.dead',
};

/** Where a message goes: its exchange and routing key. */
export function routeOf(
  exchanges: Exchanges,
  message: Pick<OutboxMessage, 'kind' | 'type'>,
): { exchange: string; routingKey: string } {
  return { exchange: message.kind === 'event' ? exchanges.events : exchanges.jobs, routingKey: message.type };
}

/** The queue a job type's jobs wait in: `<jobs exchange>.<type>`, e.g. `usecasecore.jobs.SendReceipt`. */
export function jobQueueOf(exchanges: Exchanges, type: string): string {
  return `${exchanges.jobs}.${type}`;
}

/** Declares the three exchanges (idempotent). */
export async function assertExchanges(channel: Channel, exchanges: Exchanges): Promise<void> {
  await channel.assertExchange(exchanges.events, 'topic', { durable: true });
  await channel.assertExchange(exchanges.jobs, 'direct', { durable: true });
  await channel.assertExchange(exchanges.dead, 'direct', { durable: true });
}

/**
 * Declares a durable queue bound to the given routes, with `<queue>.retry` (messages wait there for their
 * `expiration`, then dead-letter back into the queue) and `<queue>.dead` (bound to the dead-letter exchange).
 */
export async function assertQueue(
  channel: Channel,
  exchanges: Exchanges,
  queue: string,
  bindings: ReadonlyArray<Pick<OutboxMessage, 'kind' | 'type'>>,
): Promise<void> {
  await assertExchanges(channel, exchanges);
  await channel.assertQueue(queue, { durable: true, deadLetterExchange: exchanges.dead, deadLetterRoutingKey: queue });
  await channel.assertQueue(`${queue}.retry`, { durable: true, deadLetterExchange: '', deadLetterRoutingKey: queue });
  await channel.assertQueue(`${queue}.dead`, { durable: true });
  await channel.bindQueue(`${queue}.dead`, exchanges.dead, queue);
  for (const binding of bindings) {
    const { exchange, routingKey } = routeOf(exchanges, binding);
    await channel.bindQueue(queue, exchange, routingKey);
  }
}
