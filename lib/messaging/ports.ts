// The transport ports: the bus the relay publishes to, where consumers read from, and the telemetry hooks of both.
// The stores a send writes through (Outbox, Inbox, JobStore) are in lib/core/ports.ts: middleware write to them.
import type { OutboxMessage, Relay, Telemetry } from '../core/ports.js';

/**
 * What a broker did with a batch: confirmed ids, failures of a message (nacked; unroutable ones are `permanent` and
 * parked at once), and `unconfirmed` ids the broker never answered for (connection lost): retried, no attempt counted.
 */
export interface PublishReport {
  readonly sent: readonly string[];
  readonly failed: ReadonlyArray<{ readonly id: string; readonly error: string; readonly permanent: boolean }>;
  readonly unconfirmed?: readonly string[];
}

/**
 * Whether a bus takes publishes. `blocked` while the broker pushes back on publishers (RabbitMQ's
 * `connection.blocked`: a memory or disk alarm): what was already published waits unread at the broker and is
 * confirmed once it lets go, so nothing is lost and nothing needs publishing again.
 */
export type BusState =
  | { readonly blocked: false }
  | {
      readonly blocked: true;
      /** The broker's words, e.g. `low on memory`. */
      readonly reason: string;
      /** When it began (ISO 8601). */
      readonly since: string;
    };

/** A broker the relay publishes to. Throwing means "unreachable": the batch is released and retried later. */
export interface MessageBus {
  publish(messages: readonly OutboxMessage[]): Promise<PublishReport>;
  /**
   * Flow control, optional (a bus without it is never blocked; implement it together with `onStateChange`): whether
   * the broker takes publishes now. While it is blocked the relay claims nothing and publishes nothing.
   * @example if (bus.state?.().blocked) log.warn('the broker refuses publishes; the backlog waits in the outbox');
   */
  state?(): BusState;
  /**
   * Calls `listener` with each change of `state()` (once per change, not per message); returns the unsubscribe.
   * @example const off = bus.onStateChange?.((s) => log.warn(s.blocked ? `broker blocked: ${s.reason}` : 'unblocked'));
   */
  onStateChange?(listener: (state: BusState) => void): () => void;
  /** Where a message goes (for tracing): the messaging system, the exchange or topic, the routing key. Optional. */
  destinationOf?(message: OutboxMessage): {
    readonly system: string;
    readonly name: string;
    readonly routingKey: string;
  };
}

/** One delivery of a message to a consumer queue; `attempt` counts from 1. */
export interface Delivery {
  readonly message: OutboxMessage;
  readonly attempt: number;
  readonly redelivered: boolean;
}

/**
 * What to do with a delivery: done, try again later (with backoff; the last attempt's retry is dead-lettered), move
 * it to the dead-letter queue, or `requeue`: try again later without counting an attempt — the consumer could not
 * record what became of it (its database is down), so it must neither be counted nor dead-lettered.
 */
export interface Disposition {
  readonly action: 'ack' | 'retry' | 'requeue' | 'dead';
  readonly reason?: string;
}

/** Which messages a consumer queue takes: events by type (topic) and jobs by command type. */
export interface QueueOptions {
  readonly queue: string;
  readonly bindings: ReadonlyArray<{ readonly kind: OutboxMessage['kind']; readonly type: string }>;
  /** Deliveries in flight at once. */
  readonly prefetch: number;
  /** Deliveries before a message that keeps asking for retries is dead-lettered. */
  readonly maxAttempts: number;
  /** Wait before redelivering attempt n+1 (a job type's retry policy); the source's own default when absent. */
  readonly retryDelayMs?: ((attempt: number) => number) | undefined;
}

/** Where consumers get messages from (the broker, or the in-memory bus). A handler that throws asks for a retry. */
export interface MessageSource {
  consume(
    options: QueueOptions,
    handle: (delivery: Delivery) => Promise<Disposition>,
  ): Promise<{ close(): Promise<void> }>;
  /** Resolves when no delivery is in flight or waiting (retries included) in the queues consumed here. */
  idle(): Promise<void>;
}

/** What a running relay is doing, for health checks and dashboards (`RunningRelay.status()`). */
export interface RelayStatus {
  /** Polling: `start()` was called and `stop()` was not. */
  readonly running: boolean;
  /** The bus's flow control: while `blocked`, the relay claims nothing and counts no attempt; it resumes by itself. */
  readonly bus: BusState;
  /** The wait after failed publishes (the bus unreachable or nacking), in ms; 0 once a batch went through. */
  readonly backoffMs: number;
}

/** A relay you can start polling (rows committed by other processes) and stop. */
export interface RunningRelay extends Relay {
  /** Also runs a pass every `pollMs` (unref'd), for rows no wake() announced. */
  start(pollMs?: number): void;
  /**
   * Stops polling and waking, and waits for the batches in flight. While the bus is blocked, a batch in flight waits
   * for the broker to let go (or for its connection to close): give `stop()` a deadline, then close the connection.
   */
  stop(): Promise<void>;
  /**
   * What the relay is doing now: polling or not, the bus's flow control, the current backoff.
   * @example app.get('/health', (_, res) => res.json(relay.status())); // { running, bus: { blocked }, backoffMs }
   */
  status(): RelayStatus;
}

/** The Telemetry port's hooks for the relay and consumers (`otelModule()` binds one with both). */
export interface MessagingTelemetry extends Telemetry {
  /**
   * The relay is about to publish `batch` to `bus`: returns the batch to send (each message's headers may carry the
   * publish's own trace context) and `end`, which the relay calls with the bus's report, or with the error it threw.
   */
  publishing?(
    batch: readonly OutboxMessage[],
    bus: MessageBus,
  ): { readonly batch: readonly OutboxMessage[]; end(report: PublishReport | undefined, error?: unknown): void };
  /** Runs the handling of one delivery (`handle`, whose sends are its children) and sees its disposition. */
  consuming?(delivery: Delivery, queue: string, handle: () => Promise<Disposition>): Promise<Disposition>;
}
