// The interfaces adapters implement. Middleware see only these; only adapters/ import database or broker drivers.
import type { Context } from './context.js';
import type { Middleware } from './middleware.js';
import type { JobStore } from '../jobs/jobs.js';
import type { Logger } from './logger.js';
import type {
  Delivery,
  Disposition,
  Inbox,
  MessageBus,
  MessageSource,
  Outbox,
  OutboxMessage,
  PublishReport,
  Relay,
} from '../messaging/ports.js';
import type { FailureKind, Issue, Result } from './result.js';

export type * from '../messaging/ports.js';

/** Time source, replaceable in tests. */
export interface Clock {
  now(): number;
}

/**
 * Transactions. The transaction is ambient (AsyncLocalStorage) so repositories and stores join it without plumbing.
 * Stores defer their outcome records (idempotency result, audit record, outbox rows) to the end of the transaction:
 * they are written with its commit, and those that record a failure are written after a rollback too.
 */
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
  /**
   * The issue when the store refused a value of the request (out of range, too long, not of the column's type): the
   * send resolves to a `validation` failure with it instead of throwing. Optional: stores without types omit it.
   */
  refusedValue?(error: unknown): Issue | undefined;
}

/** Where an idempotency key lives: `scope` is tenant + actor, so one client can never see another's results. */
export interface IdempotencyKey {
  readonly scope: string;
  readonly key: string;
}

/** What `claim` found: the key is now held by this transaction, is held by another one, or has a stored result. */
export type Claim =
  | { readonly status: 'claimed' }
  | { readonly status: 'in_progress' }
  | { readonly status: 'completed'; readonly fingerprint: string; readonly response: Result<unknown, string> };

/** Stores idempotency keys with their payload fingerprint and the result they produced. */
export interface IdempotencyStore {
  /**
   * Claims a key in the ambient transaction, so the claim commits or vanishes with it (a crashed owner's too). A key
   * another transaction holds is waited for up to `waitMs`: it then has a result, or is free again (claimed), or is
   * still held (`in_progress`). An expired result counts as absent.
   */
  claim(id: IdempotencyKey, fingerprint: string, waitMs: number): Promise<Claim>;
  /**
   * Stores the result of a claimed key with the ambient transaction's commit; a failure result is stored after its
   * rollback too (in a write of its own), unless the key got a result meanwhile.
   */
  complete(id: IdempotencyKey, fingerprint: string, response: Result<unknown, string>, ttlMs: number): Promise<void>;
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
  /**
   * Why the send failed: its failure's message (a denial's reason, the rejected transition…), with the values of the
   * payload's sensitive fields crossed out. Absent for `ok` and for an exception, whose message may hold SQL.
   */
  readonly reason?: string | undefined;
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
  /**
   * Records an entry with the ambient transaction's commit (one that records a failure also after its rollback), or
   * at once outside a transaction. It joins its tenant's hash chain at once or when `seal()` runs.
   */
  append(entry: AuditEntry): Promise<void>;
  /** Chains the committed entries not chained yet, in commit order; returns how many (0 for a store that chains at once). */
  seal?(): Promise<number>;
  /** Records of one tenant (all tenants when omitted), `desc` = newest first. */
  list(query?: { tenant?: string; limit?: number; order?: 'asc' | 'desc' }): Promise<AuditRecord[]>;
}

/** A decision: `true` allows; `false` or `{ allow: false, reason }` denies. */
export type Decision = boolean | { readonly allow: boolean; readonly reason?: string };

/** An authorization engine. A throwing engine denies. */
export interface Policy {
  authorize(ctx: Context): Decision | Promise<Decision>;
}

/** A lifecycle engine: which state an action leads to from `from`, or which actions were allowed. */
export interface StateMachine {
  check(
    from: string,
    action: string,
  ):
    | { readonly ok: true; readonly to: string }
    | { readonly ok: false; readonly to: string; readonly allowed: readonly string[] };
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
  /** Where job states live (`ctx.enqueue` handles, `GetJob`, the jobs() middleware). */
  readonly jobs?: JobStore | undefined;
  /** Where consumers read (the handle of `ctx.enqueue` names its job queue). */
  readonly source?: MessageSource | undefined;
  readonly telemetry?: Telemetry | undefined;
  /** Where the library logs (`TOKENS.Logger`, else JSON lines of warnings and errors on stderr). */
  readonly logger?: Logger | undefined;
}

/**
 * Where a trace crosses the outbox (an OpenTelemetry binding: `otelModule()` from `usecasecore/otel`). Optional:
 * without it, messages carry no trace context.
 */
export interface Telemetry {
  /** Adds the active trace context (W3C `traceparent`, `tracestate`, `baggage`) to a staged message's headers. */
  inject(headers: Record<string, string>): void;
  /**
   * The relay is about to publish `batch` to `bus`: returns the batch to send (each message's headers may carry the
   * publish's own trace context) and `end`, which the relay calls with the bus's report, or with the error it threw.
   */
  publishing?(
    batch: readonly OutboxMessage[],
    bus: MessageBus,
  ): { readonly batch: readonly OutboxMessage[]; end(report: PublishReport | undefined, error?: unknown): void };
  /**
   * Wraps a middleware of the stack, once, when the mediator is built (e.g. to time it); returns it unchanged, or a
   * function with its `name` and `rules`. Observers (`tracing()`) are not passed.
   */
  middleware?(m: Middleware): Middleware;
  /** Runs the handling of one delivery (`handle`, whose sends are its children) and sees its disposition. */
  consuming?(delivery: Delivery, queue: string, handle: () => Promise<Disposition>): Promise<Disposition>;
}
