// The stores a send writes through, as interfaces: middleware see only these, adapters implement them, and only
// adapters/ import database or broker drivers. Transport ports (bus, source) are in lib/messaging/ports.ts.
import type { Logger } from './logger.js';
import type { QueueNames } from './queues.js';
import type { Failure, FailureKind, Issue, Result } from './result.js';

/** Time source, replaceable in tests. Bind one under `TOKENS.Clock`: every store, the sealer and retention read it. */
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

/** Append-only audit log with a per-tenant hash chain (see `chainHash` in `usecasecore/audit`). */
export interface AuditStore {
  /**
   * Records an entry with the ambient transaction's commit (one that records a failure also after its rollback), or
   * at once outside a transaction. It joins its tenant's hash chain at once or when `seal()` runs.
   */
  append(entry: AuditEntry): Promise<void>;
  /** Chains the committed entries not chained yet, in commit order; returns how many (0 if it chains at once). */
  seal?(): Promise<number>;
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

/** Where a job is: waiting (`queued`, delayed ones too), `running` (retries included), or settled. */
export type JobState = 'queued' | 'running' | 'succeeded' | 'failed' | 'dead' | 'cancelled';

/** Why a job did not succeed: its handler's failure (`failed`), or why it was dead-lettered (`dead`). */
export interface JobFailure {
  readonly kind: Failure['kind'] | 'dead';
  readonly message: string;
  readonly code?: string | undefined;
}

/** A job as the JobStore records it. Times are ISO 8601. */
export interface JobRecord {
  readonly jobId: string;
  /** The command's type (`LowStockAlert`). */
  readonly type: string;
  readonly queue: string;
  readonly tenant: string;
  /** The `key` it was enqueued with: a keyed job's record is kept for good (see `EnqueueOptions.key`). */
  readonly key?: string | undefined;
  readonly state: JobState;
  /** Runs begun so far (a retry is one more). */
  readonly attempts: number;
  /** The handler's value, once `succeeded`. */
  readonly result?: unknown;
  /** Once `failed` or `dead`. */
  readonly failure?: JobFailure | undefined;
  readonly enqueuedAt: string;
  /** When it may start (its `delayMs` / `runAt`; the enqueue time otherwise). */
  readonly runAt: string;
  readonly startedAt?: string | undefined;
  readonly settledAt?: string | undefined;
}

/** A settled job's outcome, as `JobStore.settle` records it. */
export type JobOutcome =
  | { readonly state: 'succeeded'; readonly result: unknown }
  | { readonly state: 'failed' | 'dead'; readonly failure: JobFailure };

/**
 * Records each job's life: `queued` with the enqueuing commit, `running` when a worker takes it, then `succeeded`,
 * `failed` or `dead` with the commit that settles it (or `cancelled` before it started). Run `runJobStoreContract`
 * (`usecasecore/testing`) against an implementation.
 */
export interface JobStore {
  /** Records queued jobs with the ambient transaction's commit; a job whose id is recorded already is left alone. */
  add(jobs: readonly JobRecord[]): Promise<void>;
  /**
   * A worker takes the job (its own write, committed at once, outside any transaction): a `queued` or `running` job
   * becomes `running` with one more attempt. Returns the job as it is now (`cancelled` or settled: do not run it),
   * or `undefined` when no such job is recorded.
   */
  start(jobId: string, at: string): Promise<JobRecord | undefined>;
  /**
   * Records the outcome of a `queued` or `running` job in the ambient transaction (holding the job until it ends, so
   * two settles of one job are decided one after the other); `false` when the job was not queued or running (settled
   * already, cancelled, unknown), and then nothing changes. Only the settle that returned `true` sends a callback.
   */
  settle(jobId: string, outcome: JobOutcome, at: string): Promise<boolean>;
  /** Cancels a `queued` job (it will not run when its message arrives); `false` when it was not queued. */
  cancel(jobId: string, at: string): Promise<boolean>;
  /** The job, or `undefined`. */
  status(jobId: string): Promise<JobRecord | undefined>;
  /**
   * Maintenance (optional; `retention()` needs it for `jobsMs`): deletes the records of jobs settled (or cancelled)
   * more than `olderThanMs` ago, by the store's clock, and returns how many. Queued and running jobs stay, and so
   * do keyed jobs: their record is what makes the key's job the same one for good.
   */
  purge?(olderThanMs: number): Promise<number>;
}

// ---- processes (usecasecore/processes runs them; a handler starts one in its transaction) ---------------------

/** Where a process is. `running` covers a step in progress and a step that waits. */
export type ProcessState = 'running' | 'completed' | 'compensating' | 'compensated' | 'failed';

/** Where one step is. */
export type StepState = 'pending' | 'running' | 'waiting' | 'completed' | 'failed' | 'compensated';

/** Why a step or a process failed: the failure's kind, its domain code if it has one, and its message. */
export interface ProcessFailure {
  readonly kind: string;
  readonly code?: string | undefined;
  readonly message: string;
}

/** One step of a process, as the store records it. Times are ISO 8601. */
export interface StepRecord {
  /** The step's name: its command's type (`ReserveStock`), or `wait <Event>`, `sleep`. */
  readonly name: string;
  readonly state: StepState;
  /** Runs begun so far (a retry is one more; a compensation counts apart, in `compensations`). */
  readonly attempts: number;
  readonly compensations: number;
  /** The step's value once `completed` (what the next step takes, and what its compensation takes). */
  readonly result?: unknown;
  readonly failure?: ProcessFailure | undefined;
  readonly startedAt?: string | undefined;
  readonly settledAt?: string | undefined;
}

/** A process as the store records it. Times are ISO 8601. */
export interface ProcessRecord {
  readonly processId: string;
  /** The process's name (`Checkout`). */
  readonly type: string;
  readonly tenant: string;
  /** Who started it: its steps run as this actor. */
  readonly actor?: { readonly id: string; readonly roles?: readonly string[] } | undefined;
  readonly state: ProcessState;
  /** What it was started with: the first step's input. */
  readonly input: unknown;
  readonly steps: readonly StepRecord[];
  /** Why it failed, or why it was compensated. */
  readonly failure?: ProcessFailure | undefined;
  /** Past this time the process compensates. */
  readonly deadlineAt?: string | undefined;
  readonly startedAt: string;
  readonly updatedAt: string;
  readonly endedAt?: string | undefined;
  /** The trace headers of the process's span (W3C `traceparent`…): its steps' jobs are sent under them. */
  readonly trace?: Readonly<Record<string, string>> | undefined;
}

/** What a waiting step waits for: an event type and the correlation key its payload must carry. */
export interface Correlation {
  /** The event's type (`PaymentConfirmed`, or its `static type`). */
  readonly event: string;
  readonly key: string;
}

/** A step that waits: its process and its index. */
export interface Waiter {
  readonly processId: string;
  readonly step: number;
}

/**
 * Records processes: added with the transaction that starts them, then read locked, changed and saved by the
 * transaction of each step, so a step's effect and the process's advance commit together. Every method joins the
 * ambient transaction (outside one it runs alone).
 */
export interface ProcessStore {
  /** Records a new process with the ambient transaction's commit. */
  add(process: ProcessRecord): Promise<void>;
  /** The process, held until the ambient transaction ends (two steps of one process are decided one at a time). */
  lock(processId: string): Promise<ProcessRecord | undefined>;
  /** Writes the process's state and steps (a `lock`ed one, as the step changed it) with the ambient transaction. */
  save(process: ProcessRecord): Promise<void>;
  /** The process, unlocked, or `undefined`. */
  get(processId: string): Promise<ProcessRecord | undefined>;
  /** Processes newest first, of a tenant or every tenant, in some states or all. */
  list(query?: {
    readonly tenant?: string;
    readonly states?: readonly ProcessState[];
    readonly limit?: number;
  }): Promise<ProcessRecord[]>;
  /**
   * Registers `waiter` for the event `correlation` names. Returns the event's payload when it arrived first (it is
   * then consumed: the waiter goes on at once), else `undefined` (the waiter is kept until `signal` or `unwait`).
   */
  wait(correlation: Correlation, waiter: Waiter): Promise<{ readonly payload: unknown } | undefined>;
  /**
   * An event arrived: returns who waits for it (and removes the wait), or keeps the payload for a waiter to come
   * and returns `undefined`. A second arrival of the same correlation before a waiter keeps the first.
   */
  signal(correlation: Correlation, payload: unknown): Promise<Waiter | undefined>;
  /** Forgets a wait (it timed out, or its process was cancelled); nothing if there is none. */
  unwait(correlation: Correlation): Promise<void>;
  /**
   * Maintenance (optional; `retention()` needs it for `processesMs`): deletes processes that ended `completed` or
   * `compensated` more than `olderThanMs` ago, with their steps, and events kept as long for a wait that never came
   * (`signal` with no waiter); returns how many. Failed and running processes stay.
   */
  purge?(olderThanMs: number): Promise<number>;
}

/** Something that moves committed outbox rows to the bus; woken after every commit that wrote some. */
export interface Relay {
  /** Asks for a pass soon (cheap; passes never overlap). */
  wake(): void;
  /** Resolves once every message committed so far was handed to the bus (or parked); rejects after `timeoutMs`. */
  drain(timeoutMs?: number): Promise<void>;
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

/**
 * Where a trace crosses the outbox and the stack (an OpenTelemetry binding: `otelModule()` from `usecasecore/otel`).
 * Optional: without it, messages carry no trace context. `usecasecore/messaging` adds the relay's and consumers'
 * hooks (`MessagingTelemetry`).
 */
export interface Telemetry {
  /** Adds the active trace context (W3C `traceparent`, `tracestate`, `baggage`) to a staged message's headers. */
  inject(headers: Record<string, string>): void;
  /**
   * Asked once per middleware of a stack when the mediator is built (observers such as `tracing()` excepted): how to
   * run that middleware (e.g. inside a span of its own), or `undefined` to run it as it is.
   */
  middleware?(name: string): (<T>(run: () => Promise<T>) => Promise<T>) | undefined;
  /**
   * Starts the span of a process (`Checkout process`, a child of the send that starts it) and returns its trace
   * headers: the process keeps them, and each job of its steps is sent under them (the active context, what
   * staged the job, becoming a link). Optional: without it the jobs follow the active context.
   */
  processSpan?(type: string): Record<string, string>;
  /** A process started, one of its steps settled, or it ended: told after the commit that did it, for metrics. */
  processMoved?(moved: ProcessMovement): void;
}

/** How a process moved, as `Telemetry.processMoved` is told. */
export type ProcessMovement =
  | { readonly kind: 'started'; readonly type: string }
  | { readonly kind: 'ended'; readonly type: string; readonly state: 'completed' | 'compensated' | 'failed' }
  | {
      readonly kind: 'step';
      readonly type: string;
      readonly step: string;
      readonly state: StepState;
      /** From the step's first attempt to its settling (s). */
      readonly seconds: number;
    };

/** The ports a middleware may declare it needs (`rules.ports`): the keys of `Ports` that may be unbound. */
export type PortName = 'unitOfWork' | 'idempotency' | 'audit' | 'outbox' | 'inbox' | 'relay' | 'jobs' | 'processes';

/** The ports a mediator resolved from its container (those not bound stay undefined). */
export interface Ports {
  readonly clock: Clock;
  readonly unitOfWork?: UnitOfWork | undefined;
  readonly idempotency?: IdempotencyStore | undefined;
  readonly audit?: AuditStore | undefined;
  readonly outbox?: Outbox | undefined;
  readonly inbox?: Inbox | undefined;
  readonly relay?: Relay | undefined;
  /** Where job states live (`ctx.enqueue` handles, `GetJob`, the job runner). */
  readonly jobs?: JobStore | undefined;
  /** Where processes live (`startProcess`, the process runner, `GetProcess`). */
  readonly processes?: ProcessStore | undefined;
  readonly telemetry?: Telemetry | undefined;
  /** Where the library logs (`TOKENS.Logger`, else JSON lines of warnings and errors on stderr). */
  readonly logger: Logger;
  /** How queues are named (`TOKENS.Exchanges` if bound, else the defaults): job handles and records name theirs. */
  readonly queues: QueueNames;
}
