// An in-process bus with a broker's semantics: topic-routed events, durable job queues, prefetch, retries and
// dead letters.
import type { OutboxMessage } from '../../lib/core/ports.js';
import { queueNames, type QueueNames } from '../../lib/core/queues.js';
import type {
  BusState,
  Delivery,
  Disposition,
  MessageBus,
  MessageSource,
  PublishReport,
  QueueOptions,
} from '../../lib/messaging/ports.js';
import { settlement, thrown } from '../../lib/messaging/dispositions.js';

/** A raw listener: sees every published message of a type (no acks, no retries). */
export type Subscriber = (message: OutboxMessage) => unknown;

interface Queue {
  bindings: Set<string>;
  options?: QueueOptions;
  handle?: ((delivery: Delivery) => Promise<Disposition>) | undefined;
  readonly waiting: Delivery[];
  inflight: number;
  readonly retries: Set<NodeJS.Timeout>;
  readonly dead: Array<{ message: OutboxMessage; reason: string; attempts: number }>;
}

/** Options of the memory bus. */
export interface MemoryBusOptions {
  /** How many published messages `published` keeps. Default 10,000. */
  readonly keep?: number;
  /** Wait before redelivering attempt n+1. Default 10 ms × 2^(n-1), at most 1 s. */
  readonly retryDelayMs?: (attempt: number) => number;
  /** Where errors of raw subscribers go. */
  readonly onError?: (error: unknown, message: OutboxMessage) => void;
  /** The queue names (a job type's queue). Default `queueNames()`. */
  readonly queues?: QueueNames;
}

/**
 * The memory MessageBus and MessageSource: what the relay publishes is routed to the queues bound to it (events by
 * type; jobs to their job queue, kept until a worker consumes it) and delivered with the same ack/retry/dead-letter
 * rules as RabbitMQ.
 * @example await consume(mediator, bus, 'billing', [OrderPaid]); ...; await relay.drain(); await bus.idle();
 */
export class MemoryBus implements MessageBus, MessageSource {
  readonly #subscribers = new Map<string, Subscriber[]>();
  readonly #queues = new Map<string, Queue>();
  readonly #idleWaiters: Array<() => void> = [];
  readonly #listenersInFlight = new Set<Promise<unknown>>();
  /** Every message published, in order (bounded by `keep`). */
  readonly published: OutboxMessage[] = [];

  readonly #names: QueueNames;

  constructor(private readonly options: MemoryBusOptions = {}) {
    this.#names = options.queues ?? queueNames();
  }

  /** Listens to every published message of a type; returns an unsubscribe. */
  subscribe(type: string, subscriber: Subscriber): () => void {
    this.#subscribers.set(type, [...(this.#subscribers.get(type) ?? []), subscriber]);
    return () =>
      this.#subscribers.set(
        type,
        (this.#subscribers.get(type) ?? []).filter((s) => s !== subscriber),
      );
  }

  destinationOf(message: OutboxMessage): { system: string; name: string; routingKey: string } {
    const name = message.kind === 'event' ? 'memory.events' : 'memory.jobs';
    return { system: 'usecasecore.memory', name, routingKey: message.type };
  }

  async publish(messages: readonly OutboxMessage[]): Promise<PublishReport> {
    for (const message of messages) {
      this.published.push(message);
      if (this.published.length > (this.options.keep ?? 10_000)) this.published.shift();
      for (const subscriber of this.#subscribers.get(message.type) ?? []) this.#listen(subscriber, message);
      if (message.kind === 'job') this.#queue(this.#names.job(message.type)).bindings.add(`job:${message.type}`);
      for (const queue of this.#queues.values()) {
        if (queue.bindings.has(`${message.kind}:${message.type}`))
          this.#enqueue(queue, { message, attempt: 1, redelivered: false });
      }
    }
    return { sent: messages.map((m) => m.id), failed: [] };
  }

  async consume(
    options: QueueOptions,
    handle: (delivery: Delivery) => Promise<Disposition>,
  ): Promise<{ close(): Promise<void> }> {
    const queue = this.#queue(options.queue);
    for (const { kind, type } of options.bindings) queue.bindings.add(`${kind}:${type}`);
    queue.options = options;
    queue.handle = handle;
    this.#pump(queue);
    return {
      close: async () => {
        queue.handle = undefined;
        while (queue.inflight > 0) await new Promise((resolve) => setImmediate(resolve));
      },
    };
  }

  /** Never blocked: an in-process bus has no broker to push back (the port's flow control, trivially). */
  state(): BusState {
    return { blocked: false };
  }

  /** Never calls `listener`: the state never changes. */
  onStateChange(_listener: (state: BusState) => void): () => void {
    return () => undefined;
  }

  /** Messages a queue dead-lettered, with why and after how many deliveries. */
  deadLetters(queue: string): ReadonlyArray<{ message: OutboxMessage; reason: string; attempts: number }> {
    return this.#queues.get(queue)?.dead ?? [];
  }

  async idle(): Promise<void> {
    while (this.#listenersInFlight.size > 0) await Promise.allSettled([...this.#listenersInFlight]);
    if (!this.#busy()) return;
    await new Promise<void>((resolve) => this.#idleWaiters.push(resolve));
    return this.idle();
  }

  #queue(name: string): Queue {
    let queue = this.#queues.get(name);
    if (!queue)
      this.#queues.set(name, (queue = { bindings: new Set(), waiting: [], inflight: 0, retries: new Set(), dead: [] }));
    return queue;
  }

  #listen(subscriber: Subscriber, message: OutboxMessage): void {
    const delivery = Promise.resolve()
      .then(() => subscriber(message))
      .catch((error) => this.options.onError?.(error, message));
    this.#listenersInFlight.add(delivery);
    void delivery.finally(() => this.#listenersInFlight.delete(delivery));
  }

  #enqueue(queue: Queue, delivery: Delivery): void {
    queue.waiting.push(delivery);
    this.#pump(queue);
  }

  #pump(queue: Queue): void {
    while (queue.handle && queue.options && queue.inflight < queue.options.prefetch && queue.waiting.length > 0) {
      const delivery = queue.waiting.shift()!;
      const handle = queue.handle,
        options = queue.options;
      queue.inflight++;
      void Promise.resolve()
        .then(() => handle(delivery))
        .catch(thrown)
        .then((disposition) => {
          queue.inflight--;
          this.#settle(queue, options, delivery, settlement(disposition, delivery.attempt, options.maxAttempts));
          this.#pump(queue);
          this.#notify();
        });
    }
    this.#notify();
  }

  #settle(queue: Queue, options: QueueOptions, delivery: Delivery, disposition: Disposition): void {
    const reason = disposition.reason ?? disposition.action;
    if (disposition.action === 'ack') return;
    const requeue = disposition.action === 'requeue';
    if (disposition.action === 'dead') {
      queue.dead.push({ message: delivery.message, reason, attempts: delivery.attempt });
      return;
    }
    const delayOf = options.retryDelayMs ?? this.options.retryDelayMs;
    const delay = delayOf?.(delivery.attempt) ?? Math.min(10 * 2 ** (delivery.attempt - 1), 1_000);
    const attempt = requeue ? delivery.attempt : delivery.attempt + 1;
    const timer = setTimeout(() => {
      queue.retries.delete(timer);
      this.#enqueue(queue, { message: delivery.message, attempt, redelivered: true });
    }, delay);
    queue.retries.add(timer);
  }

  #busy(): boolean {
    for (const queue of this.#queues.values()) {
      if (queue.handle && (queue.waiting.length > 0 || queue.inflight > 0 || queue.retries.size > 0)) return true;
    }
    return false;
  }

  #notify(): void {
    if (!this.#busy()) for (const resolve of this.#idleWaiters.splice(0)) resolve();
  }
}
