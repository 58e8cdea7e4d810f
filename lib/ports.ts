// The interfaces adapters implement. Middleware see only these; only adapters/ import database or broker drivers.
import type { Context } from './context.js';
import type { FailureKind, Result } from './result.js';

/** Time source, replaceable in tests. */
export interface Clock { now(): number }

/** Transactions. The transaction is ambient (AsyncLocalStorage) so repositories and stores join it without plumbing. */
export interface UnitOfWork {
  /**
   * Runs `work` in a transaction scope (a savepoint when one is already active), begun lazily by the adapter.
   * Commits when `shouldCommit(value)` is true, otherwise rolls back; rolls back and rethrows when `work` throws.
   */
  transaction<T>(work: () => Promise<T>, shouldCommit: (value: T) => boolean): Promise<T>;
  /** True for serialization failures and deadlocks: the whole attempt may be re-run. */
  isRetryable(error: unknown): boolean;
  /** True when the store is unreachable (connection lost): the send resolves to `unavailable`. */
  isUnavailable(error: unknown): boolean;
}

/** Where an idempotency key lives: `scope` is tenant + actor, so one client can never see another's results. */
export interface IdempotencyKey { readonly scope: string; readonly key: string }

/** What `claim` found. */
export type Claim =
  | { readonly status: 'claimed'; readonly token: string }
  | { readonly status: 'in_progress'; readonly fingerprint: string }
  | { readonly status: 'completed'; readonly fingerprint: string; readonly response: Result<unknown, string> };

/** Stores idempotency keys with their payload fingerprint and the result they produced. */
export interface IdempotencyStore {
  /** Claims a key for `leaseMs`; an expired claim or an expired record is taken over. Commits on its own. */
  claim(id: IdempotencyKey, fingerprint: string, leaseMs: number): Promise<Claim>;
  /** Stores the result in the ambient transaction; throws `UseCaseError('claim_lost')` if `token` no longer owns the key. */
  complete(id: IdempotencyKey, token: string, response: Result<unknown, string>, ttlMs: number): Promise<void>;
  /** Gives the key back so a retry runs (after an unexpected error). */
  release(id: IdempotencyKey, token: string): Promise<void>;
  /** Deletes expired records; returns how many. */
  reap(): Promise<number>;
}

/** One audited send, before it joins the chain. */
export interface AuditEntry {
  readonly id: string;
  readonly at: string;
  readonly tenant: string;
  readonly actor: string | null;
  readonly type: string;
  readonly requestId: string;
  readonly outcome: 'ok' | FailureKind | 'error';
  readonly code?: string | undefined;
  readonly replayed?: boolean | undefined;
  readonly payload: unknown;
}

/** An audit entry in its tenant's hash chain. */
export interface AuditRecord extends AuditEntry {
  readonly seq: number;
  readonly prevHash: string;
  readonly hash: string;
}

/** Append-only audit log with a per-tenant hash chain (see `chainHash`). */
export interface AuditStore {
  /** Appends in the ambient transaction, or in its own when none is active; serializes per tenant. */
  append(entry: AuditEntry): Promise<AuditRecord>;
  /** Records of one tenant (all tenants when omitted), `desc` = newest first. */
  list(query?: { tenant?: string; limit?: number; order?: 'asc' | 'desc' }): Promise<AuditRecord[]>;
}

/** An event or job on its way out, with a stable id that consumers dedupe on. */
export interface OutboxMessage {
  readonly id: string;
  readonly kind: 'event' | 'job';
  readonly type: string;
  readonly payload: unknown;
  readonly occurredAt: string;
  readonly aggregateId?: string | undefined;
  readonly headers: Readonly<Record<string, string>>;
  /** Failed publish attempts so far (set by the outbox when it hands the message out). */
  readonly attempts?: number | undefined;
}

/** The transactional outbox. */
export interface Outbox {
  /** Writes messages in the ambient transaction. */
  add(messages: readonly OutboxMessage[]): Promise<void>;
  /** Claims up to `limit` committed, unsent messages in order; claimed rows are invisible to other relays. */
  claim(limit: number): Promise<OutboxMessage[]>;
  markSent(ids: readonly string[]): Promise<void>;
  /** Returns a claimed message with one more failed attempt; `park` sets it aside with its error for good. */
  markFailed(id: string, error: string, park: boolean): Promise<void>;
  /** Returns claimed messages untouched (the bus was unreachable: that is no fault of theirs, no attempt counted). */
  release(ids: readonly string[]): Promise<void>;
  /** Committed messages not yet sent (parked ones excluded). */
  pending(): Promise<number>;
}

/** Remembers which messages each consumer processed, so a redelivered message takes effect once. */
export interface Inbox {
  /** Records the message for the consumer in the ambient transaction; `false` when it was already recorded. */
  record(consumer: string, messageId: string): Promise<boolean>;
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

/** A broker the relay publishes to. Throwing means "unreachable": the batch is released and retried later. */
export interface MessageBus {
  publish(messages: readonly OutboxMessage[]): Promise<PublishReport>;
}

/** One delivery of a message to a consumer queue; `attempt` counts from 1. */
export interface Delivery {
  readonly message: OutboxMessage;
  readonly attempt: number;
  readonly redelivered: boolean;
}

/** What to do with a delivery: done, try again later (with backoff), or move it to the dead-letter queue. */
export interface Disposition {
  readonly action: 'ack' | 'retry' | 'dead';
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
}

/** Where consumers get messages from (the broker, or the in-memory bus). A handler that throws asks for a retry. */
export interface MessageSource {
  consume(options: QueueOptions, handle: (delivery: Delivery) => Promise<Disposition>): Promise<{ close(): Promise<void> }>;
  /** Resolves when no delivery is in flight or waiting (retries included) in the queues consumed here. */
  idle(): Promise<void>;
  /** The queue every worker of a job type shares (the bus routes that type's jobs there, so they wait for a worker). */
  jobQueue(type: string): string;
}

/** Something that moves committed outbox rows to the bus; woken after every commit that wrote some. */
export interface Relay {
  /** Asks for a pass soon (cheap; passes never overlap). */
  wake(): void;
  /** Resolves once every message committed so far was handed to the bus (or parked); rejects after `timeoutMs`. */
  drain(timeoutMs?: number): Promise<void>;
}

/** A decision: `true` allows; `false` or `{ allow: false, reason }` denies. */
export type Decision = boolean | { readonly allow: boolean; readonly reason?: string };

/** An authorization engine. A throwing engine denies. */
export interface Policy {
  authorize(ctx: Context): Decision | Promise<Decision>;
}

/** A lifecycle engine: which state an action leads to from `from`, or which actions were allowed. */
export interface StateMachine {
  check(from: string, action: string): { readonly ok: true; readonly to: string } | { readonly ok: false; readonly to: string; readonly allowed: readonly string[] };
}

/** The ports a mediator resolved from its container (those not bound stay undefined). */
export interface Ports {
  readonly clock: Clock;
  readonly unitOfWork?: UnitOfWork | undefined;
  readonly idempotency?: IdempotencyStore | undefined;
  readonly audit?: AuditStore | undefined;
  readonly outbox?: Outbox | undefined;
  readonly inbox?: Inbox | undefined;
  readonly relay?: Relay | undefined;
}
