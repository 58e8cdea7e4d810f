// Consumers on RabbitMQ: bounded prefetch, ack after the handler's commit, retry through a delay queue, dead letters.
import type { Channel, ConfirmChannel, ConsumeMessage, Options } from 'amqplib';
import { UseCaseError } from '../../lib/core/errors.js';
import { queueNames, type QueueNames } from '../../lib/core/queues.js';
import { settlement, thrown } from '../../lib/messaging/dispositions.js';
import type { Delivery, Disposition, MessageSource, QueueOptions } from '../../lib/messaging/ports.js';
import { ATTEMPT, decode } from './codec.js';
import { confirmChannel, type AmqpConnection } from './connection.js';
import { assertQueue, type Exchanges, type QueueDeclaration } from './topology.js';

interface Subscription {
  readonly options: QueueOptions;
  readonly handle: (delivery: Delivery) => Promise<Disposition>;
  channel?: Channel | undefined;
  tag?: string | undefined;
  inflight: number;
  closed: boolean;
}

/** Options of the consumer side; `queueType` and `deliveryLimit` must be the bus's (both declare job queues). */
export interface AmqpSourceOptions extends QueueDeclaration {
  readonly exchanges: Exchanges;
  /**
   * Wait before redelivering attempt n+1, for queues without a retry delay of their own (`QueueOptions`, e.g. a
   * job type's retry policy). Default 100 ms × 2^(n-1), at most 30 s.
   */
  readonly retryDelayMs?: (attempt: number) => number;
}

/**
 * The RabbitMQ MessageSource. Consumers use the connection's `consume` role, which never publishes, so a broker that
 * blocks publishers (memory or disk alarm) still reads their acks and the queues keep draining; retries and dead
 * letters go out on the `publish` role. After a lost connection it reconnects with backoff, declares the topology
 * again and resumes every consumer, and a consumer the broker cancels (its queue deleted) declares its queue again;
 * a delivery is acked only on the channel it came on (never "unknown delivery tag"), so a handler still running
 * across a reconnect leaves its message to be redelivered, and the inbox dedupes it. A queue the broker refuses to
 * declare (it exists with another type or other arguments) fails `consume()` with a UseCaseError saying how to fix
 * it; met while reconnecting, it is emitted on the connection as `'refused'` (which `logTo` logs) and retried with
 * the backoff, so the consumer comes back once the queue is fixed.
 * @example
 * const source = new AmqpSource(connection, { exchanges: DEFAULT_EXCHANGES, queueType: 'quorum' });
 * await source.consume({ queue: 'billing', bindings, prefetch: 16, maxAttempts: 5 }, handle);
 */
export class AmqpSource implements MessageSource {
  readonly #subscriptions = new Set<Subscription>();
  #reconnecting: Promise<void> | undefined;
  /** Deliveries started so far: `idle()` knows a count it took is stale when this moved meanwhile. */
  #deliveries = 0;

  /**
   * The confirm channel retries and dead letters go out on, on the `publish` connection: a consumer's connection
   * that published would be blocked, acks and all, under a resource alarm.
   */
  readonly #publishing: () => Promise<ConfirmChannel>;
  readonly #names: QueueNames;

  constructor(
    private readonly connection: AmqpConnection,
    private readonly options: AmqpSourceOptions,
  ) {
    this.#publishing = confirmChannel(connection, 'publish');
    this.#names = queueNames(options.exchanges);
  }

  async consume(
    options: QueueOptions,
    handle: (delivery: Delivery) => Promise<Disposition>,
  ): Promise<{ close(): Promise<void> }> {
    const subscription: Subscription = { options, handle, inflight: 0, closed: false };
    this.#subscriptions.add(subscription);
    try {
      await this.#start(subscription);
    } catch (error) {
      this.#subscriptions.delete(subscription);
      throw error;
    }
    return {
      close: async () => {
        subscription.closed = true;
        this.#subscriptions.delete(subscription);
        const { channel, tag } = subscription;
        if (channel && tag) await channel.cancel(tag).catch(() => undefined);
        while (subscription.inflight > 0) await new Promise((resolve) => setTimeout(resolve, 5));
        await channel?.close().catch(() => undefined);
      },
    };
  }

  async idle(): Promise<void> {
    // Counting takes round trips, during which a message can move: from `.retry` into its queue (counted in order
    // `.retry` then queue, it is seen either way), or be delivered, handled and retried (then `#deliveries` moved).
    const quiet = () => !this.#reconnecting && [...this.#subscriptions].every((s) => s.inflight === 0);
    for (;;) {
      const deliveries = this.#deliveries;
      if (quiet() && (await this.#queuedMessages()) === 0 && quiet() && deliveries === this.#deliveries) return;
      await new Promise((resolve) => setTimeout(resolve, 20)); // the broker's counts are only known by asking
    }
  }

  async #queuedMessages(): Promise<number> {
    const model = await this.connection.model('consume');
    let total = 0;
    for (const { options } of this.#subscriptions) {
      for (const queue of [this.#names.retry(options.queue), options.queue]) {
        // A channel per check: a missing queue closes its channel (404), and without an 'error' listener amqplib
        // would close the whole connection.
        const channel = await model.createChannel();
        channel.on('error', () => undefined);
        total += await channel.checkQueue(queue).then(
          (q) => q.messageCount,
          () => 0,
        );
        await channel.close().catch(() => undefined);
      }
    }
    return total;
  }

  async #start(subscription: Subscription): Promise<void> {
    const model = await this.connection.model('consume');
    const channel = await model.createChannel();
    subscription.channel = channel; // before any await: a close arriving meanwhile must see it is this one's
    // Until it consumes, a failure is this call's to report (consume() rejects, or the reconnect loop retries): a
    // declaration the broker refuses closes the channel, which must not start a reconnect of its own as well.
    let consuming = false;
    channel.on('error', () => undefined); // 'close' follows
    channel.on('close', () => {
      if (subscription.channel !== channel) return;
      subscription.channel = undefined;
      if (consuming && !subscription.closed) void this.#reconnect(); // connection lost, or the channel alone closed
    });
    try {
      await channel.prefetch(subscription.options.prefetch);
      await this.#subscribe(subscription, channel);
    } catch (error) {
      if (subscription.channel === channel) subscription.channel = undefined;
      await channel.close().catch(() => undefined); // already closed by the broker, most often
      throw error;
    }
    consuming = true;
  }

  /** Declares the queue and consumes it on `channel`; the broker cancelling the consumer subscribes it again. */
  async #subscribe(subscription: Subscription, channel: Channel): Promise<void> {
    const { queue, bindings } = subscription.options;
    await assertQueue(channel, this.options.exchanges, queue, bindings, this.options);
    const { consumerTag } = await channel.consume(
      queue,
      (message) => {
        if (message) void this.#deliver(subscription, channel, message);
        else void this.#resubscribe(subscription, channel);
      },
      { noAck: false },
    );
    subscription.tag = consumerTag;
  }

  /**
   * The broker cancelled the consumer (its queue was deleted, or moved to another node): declare the queue again
   * and consume on the same channel, so deliveries in flight can still be acked; failing that, close the channel,
   * which starts a reconnect.
   */
  async #resubscribe(subscription: Subscription, channel: Channel): Promise<void> {
    if (subscription.closed || subscription.channel !== channel) return;
    subscription.tag = undefined;
    try {
      await this.#subscribe(subscription, channel);
    } catch {
      await channel.close().catch(() => undefined);
    }
  }

  async #deliver(subscription: Subscription, channel: Channel, raw: ConsumeMessage): Promise<void> {
    subscription.inflight++;
    this.#deliveries++;
    try {
      let disposition: Disposition,
        attempt = 1;
      try {
        const decoded = decode(raw);
        attempt = decoded.attempt;
        disposition = await subscription.handle({
          message: decoded.message,
          attempt,
          redelivered: raw.fields.redelivered,
        });
      } catch (error) {
        disposition =
          raw.content.length > 0 && isJson(raw.content)
            ? thrown(error)
            : { action: 'dead', reason: `body is not JSON: ${String(error)}` };
      }
      disposition = settlement(disposition, attempt, subscription.options.maxAttempts);
      try {
        if (disposition.action === 'retry' || disposition.action === 'requeue') {
          const next = disposition.action === 'retry' ? attempt + 1 : attempt; // a requeue counts no attempt
          await this.#retry(subscription.options, raw, attempt, next, disposition.reason);
        }
        if (disposition.action === 'dead')
          await this.#deadLetter(subscription.options.queue, raw, attempt, disposition.reason);
      } catch {
        // The copy was not confirmed (the publishing connection was lost): put the original back to try again.
        channel.nack(raw, false, true);
        return;
      }
      channel.ack(raw);
    } catch {
      // The channel closed under us: the broker redelivers the message, and the inbox dedupes it.
    } finally {
      subscription.inflight--;
    }
  }

  /**
   * Republishes to `<queue>.retry` as attempt `next`, which it hands back after the delay; acked only once the copy
   * is confirmed.
   */
  async #retry(options: QueueOptions, raw: ConsumeMessage, attempt: number, next: number, reason = 'retry') {
    const { queue } = options;
    const delayOf = options.retryDelayMs ?? this.options.retryDelayMs;
    const delay = delayOf?.(attempt) ?? Math.min(100 * 2 ** (attempt - 1), 30_000);
    return confirmed(
      await this.#publishing(),
      '',
      this.#names.retry(queue),
      raw,
      { [ATTEMPT]: next, 'x-usecasecore-last-error': reason.slice(0, 500) },
      { expiration: String(delay) },
    );
  }

  async #deadLetter(queue: string, raw: ConsumeMessage, attempt: number, reason = 'dead'): Promise<void> {
    return confirmed(await this.#publishing(), this.options.exchanges.dead, queue, raw, {
      [ATTEMPT]: attempt,
      'x-usecasecore-dead-reason': reason.slice(0, 500),
    });
  }

  /** Restarts every consumer that lost its channel, backing off while the broker is unreachable. */
  #reconnect(): Promise<void> {
    // Stops when the connection was closed on purpose (shutdown), else keeps trying: a worker waits for its broker.
    const orphans = () =>
      this.connection.closed ? [] : [...this.#subscriptions].filter((s) => !s.closed && !s.channel);
    this.#reconnecting ??= (async () => {
      const told = new Set<string>();
      for (let delay = 100; orphans().length > 0; delay = Math.min(delay * 2, 5_000)) {
        try {
          for (const subscription of orphans()) {
            await this.#start(subscription).catch((error: unknown) => {
              if (!UseCaseError.is(error)) throw error; // the broker is unreachable: the others would fail too
              // The broker refuses this queue (declared again with another type meanwhile), the others may start.
              // No outage, so nothing else would say why this consumer stays away: told once, retried until fixed.
              if (told.has(error.message)) return;
              told.add(error.message);
              this.connection.emit('refused', 'consume', error);
            });
          }
        } catch {
          // The broker is unreachable (or dropped the connection again): all of them again after the delay.
        }
        if (orphans().length > 0) await new Promise((resolve) => setTimeout(resolve, delay));
      }
    })().finally(() => {
      this.#reconnecting = undefined;
    });
    return this.#reconnecting;
  }
}

function confirmed(
  channel: ConfirmChannel,
  exchange: string,
  routingKey: string,
  raw: ConsumeMessage,
  headers: Record<string, unknown>,
  extra: Options.Publish = {},
): Promise<void> {
  const { messageId, type, contentType, timestamp } = raw.properties;
  return new Promise((resolve, reject) => {
    channel.publish(
      exchange,
      routingKey,
      raw.content,
      {
        persistent: true,
        messageId,
        type,
        contentType,
        timestamp,
        headers: { ...raw.properties.headers, ...headers },
        ...extra,
      },
      (error) => (error ? reject(error) : resolve()),
    );
  });
}

function isJson(content: Buffer): boolean {
  try {
    JSON.parse(content.toString('utf8'));
    return true;
  } catch {
    return false;
  }
}
