// An in-process message bus: subscribers get messages after the relay published them, i.e. after commit.
import type { MessageBus, OutboxMessage, PublishReport } from '../../lib/ports.js';

/** A subscriber; a throw is reported to `onError` and does not affect other subscribers. */
export type Subscriber = (message: OutboxMessage) => unknown;

/**
 * The memory MessageBus.
 * @example bus.subscribe('inventory.moved', (m) => seen.push(m)); ...; await relay.drain(); await bus.idle();
 */
export class MemoryBus implements MessageBus {
  readonly #subscribers = new Map<string, Subscriber[]>();
  readonly #inflight = new Set<Promise<unknown>>();
  /** Every message published, in order (bounded by `keep`). */
  readonly published: OutboxMessage[] = [];

  constructor(private readonly options: { keep?: number; onError?: (error: unknown, message: OutboxMessage) => void } = {}) {}

  /** Subscribes to a message type (an event's `type`, or a command type for jobs); returns an unsubscribe. */
  subscribe(type: string, subscriber: Subscriber): () => void {
    const list = this.#subscribers.get(type) ?? [];
    this.#subscribers.set(type, [...list, subscriber]);
    return () => this.#subscribers.set(type, (this.#subscribers.get(type) ?? []).filter((s) => s !== subscriber));
  }

  async publish(messages: readonly OutboxMessage[]): Promise<PublishReport> {
    for (const message of messages) {
      this.published.push(message);
      if (this.published.length > (this.options.keep ?? 10_000)) this.published.shift();
      for (const subscriber of this.#subscribers.get(message.type) ?? []) {
        const delivery = Promise.resolve().then(() => subscriber(message)).catch((error) => this.options.onError?.(error, message));
        this.#inflight.add(delivery);
        void delivery.finally(() => this.#inflight.delete(delivery));
      }
    }
    return { sent: messages.map((m) => m.id), failed: [] };
  }

  /** Resolves when every delivery started so far has finished. */
  async idle(): Promise<void> {
    while (this.#inflight.size > 0) await Promise.allSettled([...this.#inflight]);
  }
}
