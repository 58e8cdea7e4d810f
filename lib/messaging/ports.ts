// The messaging ports: the outbox and inbox stores, the bus the relay publishes to, and where consumers read from.

/** An event or job on its way out, with a stable id that consumers dedupe on. */
export interface OutboxMessage {
  readonly id: string;
  readonly kind: 'event' | 'job';
  readonly type: string;
  readonly payload: unknown;
  readonly occurredAt: string;
  readonly aggregateId?: string | undefined;
  readonly headers: Readonly<Record<string, string>>;
  /** Not to be published before this time (ISO 8601): a delayed or scheduled job. Absent: at once. */
  readonly availableAt?: string | undefined;
  /** Failed publish attempts so far (set by the outbox when it hands the message out). */
  readonly attempts?: number | undefined;
}

/** The transactional outbox. */
export interface Outbox {
  /** Writes messages in the ambient transaction; a message whose id the outbox holds already is left out. */
  add(messages: readonly OutboxMessage[]): Promise<void>;
  /**
   * Claims up to `limit` committed, unsent messages in order, none before its `availableAt` (by the outbox's clock);
   * claimed rows are invisible to other relays.
   */
  claim(limit: number): Promise<OutboxMessage[]>;
  markSent(ids: readonly string[]): Promise<void>;
  /** Returns a claimed message with one more failed attempt; `park` sets it aside with its error for good. */
  markFailed(id: string, error: string, park: boolean): Promise<void>;
  /** Returns claimed messages untouched (the bus was unreachable: that is no fault of theirs, no attempt counted). */
  release(ids: readonly string[]): Promise<void>;
  /** Committed messages due now and not yet sent (parked ones, and those not yet available, excluded). */
  pending(): Promise<number>;
  /**
   * Maintenance (optional; `retention()` needs it for `outboxSentMs`): deletes sent messages sent more than
   * `olderThanMs` ago and returns how many. Unsent, claimed and parked messages are never deleted.
   */
  purgeSent?(olderThanMs: number): Promise<number>;
}

/** Remembers which messages each consumer processed, so a redelivered message takes effect once. */
export interface Inbox {
  /** Records the message for the consumer in the ambient transaction; `false` when it was already recorded. */
  record(consumer: string, messageId: string): Promise<boolean>;
  /**
   * Maintenance (optional; `retention()` needs it for `inboxMs`): forgets records made more than `olderThanMs` ago
   * and returns how many. Keep them longer than a message can be redelivered, or a late duplicate takes effect again.
   */
  purge?(olderThanMs: number): Promise<number>;
}

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
  /** The queue every worker of a job type shares (the bus routes that type's jobs there, so they wait for a worker). */
  jobQueue(type: string): string;
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

/** Something that moves committed outbox rows to the bus; woken after every commit that wrote some. */
export interface Relay {
  /** Asks for a pass soon (cheap; passes never overlap). */
  wake(): void;
  /** Resolves once every message committed so far was handed to the bus (or parked); rejects after `timeoutMs`. */
  drain(timeoutMs?: number): Promise<void>;
}
