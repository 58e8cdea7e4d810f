// The relay's bus on RabbitMQ: publisher confirms, mandatory routing, backpressure, and per-message outcomes.
import { once } from 'node:events';
import type { ConfirmChannel } from 'amqplib';
import type { OutboxMessage } from '../../lib/core/ports.js';
import { queueNames } from '../../lib/core/queues.js';
import type { BusState, MessageBus, PublishReport } from '../../lib/messaging/ports.js';
import { encode } from './codec.js';
import { confirmChannel, type AmqpConnection } from './connection.js';
import { assertExchanges, assertQueue, routeOf, type Exchanges, type QueueDeclaration } from './topology.js';

/** Options of the publisher; `queueType` and `deliveryLimit` declare job queues, and must be the source's. */
export interface AmqpBusOptions extends QueueDeclaration {
  readonly exchanges: Exchanges;
  /** Publish events as `mandatory`, so an event no queue is bound to is returned and parked. Jobs always are. */
  readonly mandatoryEvents: boolean;
  /**
   * How long a batch waits for the broker's confirms before its unanswered messages are retried. Default 10 s. The
   * clock stops while the broker blocks the connection: what it has not read yet is confirmed once it lets go.
   */
  readonly confirmTimeoutMs?: number;
}

/**
 * Publishes outbox batches with confirms, on the connection's `publish` role. A message is `sent` only once the
 * broker confirmed it; a returned (unroutable) one fails for good; a nacked one fails; one left unanswered
 * (connection lost, no answer within `confirmTimeoutMs`) is `unconfirmed` and retried without counting an attempt.
 * `state()` reports the broker's flow control (`connection.blocked`, a memory or disk alarm), so the relay stops
 * claiming while the broker cannot take more.
 */
export class AmqpBus implements MessageBus {
  readonly #jobQueues = new Set<string>();
  readonly #returned = new Map<string, string>();

  /** The publishing channel; a new one forgets the job queues the last one declared. */
  readonly #open: () => Promise<ConfirmChannel>;

  constructor(
    private readonly connection: AmqpConnection,
    private readonly options: AmqpBusOptions,
  ) {
    this.#open = confirmChannel(
      connection,
      'publish',
      (channel) => this.#setUp(channel),
      () => this.#jobQueues.clear(),
    );
  }

  state(): BusState {
    const blocked = this.connection.blocked;
    return blocked ? { blocked: true, reason: blocked.reason, since: blocked.since.toISOString() } : { blocked: false };
  }

  onStateChange(listener: (state: BusState) => void): () => void {
    const changed = () => listener(this.state());
    this.connection.on('blocked', changed).on('unblocked', changed);
    return () => {
      this.connection.off('blocked', changed).off('unblocked', changed);
    };
  }

  destinationOf(message: OutboxMessage): { system: string; name: string; routingKey: string } {
    const { exchange, routingKey } = routeOf(this.options.exchanges, message);
    return { system: 'rabbitmq', name: exchange, routingKey };
  }

  /**
   * Safe to call again while an earlier batch awaits its confirms (the relay pipelines batches): each call listens
   * for its own messages' confirms, and the broker confirms one channel's messages in publish order.
   */
  async publish(messages: readonly OutboxMessage[]): Promise<PublishReport> {
    const channel = await this.#open();
    await this.#declareJobQueues(channel, messages);
    let closed = false;
    const onClose = () => {
      closed = true;
    };
    channel.once('close', onClose);
    try {
      const outcomes = new Map<string, Error | null>();
      // One promise per batch rather than per message: it settles once every message published got its answer.
      let expected = messages.length;
      let answered!: () => void;
      const allAnswered = new Promise<void>((resolve) => {
        answered = resolve;
      });
      let published = 0;
      for (const message of messages) {
        const { exchange, routingKey } = routeOf(this.options.exchanges, message);
        const { content, options } = encode(message);
        const mandatory = message.kind === 'job' || this.options.mandatoryEvents;
        const writable = channel.publish(exchange, routingKey, content, { ...options, mandatory }, (error) => {
          outcomes.set(message.id, error ?? null);
          if (outcomes.size === expected) answered();
        });
        published++;
        if (!writable) await drainedOrClosed(channel); // the socket buffer is full
        if (closed) break;
      }
      expected = published; // the channel closed before the rest went out: they stay unconfirmed
      if (outcomes.size === expected) answered();
      await this.#confirmedOrTimedOut(allAnswered);
      return this.#report(messages, outcomes, closed);
    } finally {
      channel.off('close', onClose);
    }
  }

  /**
   * Waits for every confirm, at most `confirmTimeoutMs` of unblocked time. While the broker blocks the connection
   * the wait goes on: the broker has the messages (unread in the socket) and answers once it lets go, so giving up
   * would publish them twice. A lost connection unblocks it and fails its confirms, which ends the wait.
   */
  async #confirmedOrTimedOut(allAnswered: Promise<void>): Promise<void> {
    const limitMs = this.options.confirmTimeoutMs ?? 10_000;
    for (;;) {
      const abort = new AbortController();
      const { signal } = abort;
      const blocked = this.connection.blocked !== undefined;
      // Blocked: wait for the broker to let go (then a full period again). Flowing: a period, or until it blocks.
      const next = blocked
        ? once(this.connection, 'unblocked', { signal }).then(() => 'changed' as const)
        : Promise.race([
            once(this.connection, 'blocked', { signal }).then(() => 'changed' as const),
            new Promise<'timeout'>((resolve) => {
              const timer = setTimeout(resolve, limitMs, 'timeout');
              signal.addEventListener('abort', () => clearTimeout(timer));
            }),
          ]);
      try {
        // `next` rejects only once aborted, after the race settled.
        if ((await Promise.race([allAnswered.then(() => 'answered' as const), next])) !== 'changed') return;
      } finally {
        abort.abort();
      }
    }
  }

  #report(
    messages: readonly OutboxMessage[],
    outcomes: ReadonlyMap<string, Error | null>,
    closed: boolean,
  ): PublishReport {
    const sent: string[] = [],
      unconfirmed: string[] = [];
    const failed: Array<{ id: string; error: string; permanent: boolean }> = [];
    for (const { id } of messages) {
      const returned = this.#returned.get(id),
        outcome = outcomes.get(id);
      this.#returned.delete(id);
      if (returned !== undefined) failed.push({ id, error: returned, permanent: true });
      else if (outcome === null) sent.push(id);
      else if (outcome === undefined || closed) unconfirmed.push(id);
      else failed.push({ id, error: `nacked by the broker: ${outcome.message}`, permanent: false });
    }
    return { sent, failed, unconfirmed };
  }

  /** Readies a new publishing channel: hears returns, declares the exchanges. */
  async #setUp(channel: ConfirmChannel): Promise<void> {
    // A returned message arrives before its confirm, so the batch sees it when it reports.
    channel.on('return', (message) => {
      const { exchange, routingKey, replyText } = message.fields as {
        exchange: string;
        routingKey: string;
        replyText?: string;
      };
      this.#returned.set(
        String(message.properties.messageId),
        `unroutable: no queue bound to ${exchange || '(default)'} with key "${routingKey}" ` +
          `(${replyText ?? 'NO_ROUTE'})`,
      );
    });
    await assertExchanges(channel, this.options.exchanges);
  }

  /**
   * Declares the queue of each job type before its first job, so a job waits for a worker instead of being lost. A
   * queue the broker refuses (another type) fails the publish with a UseCaseError; the relay keeps the rows.
   */
  async #declareJobQueues(channel: ConfirmChannel, messages: readonly OutboxMessage[]): Promise<void> {
    for (const { kind, type } of messages) {
      if (kind !== 'job' || this.#jobQueues.has(type)) continue;
      const queue = queueNames(this.options.exchanges).job(type);
      await assertQueue(channel, this.options.exchanges, queue, [{ kind: 'job', type }], this.options);
      this.#jobQueues.add(type);
    }
  }
}

/** Waits for 'drain' or 'close', leaving no listener behind (this channel lives long and waits often under load). */
async function drainedOrClosed(channel: ConfirmChannel): Promise<void> {
  const abort = new AbortController();
  try {
    await Promise.race([
      once(channel, 'drain', { signal: abort.signal }),
      once(channel, 'close', { signal: abort.signal }),
    ]);
  } finally {
    abort.abort();
  }
}
