// The interfaces adapters implement. Middleware see only these; only adapters/ import database or broker drivers.
import type { Context } from './context.js';
import type { Inbox, Outbox, Relay } from './messaging.js';
import type { FailureKind, Result } from './result.js';

export type * from './messaging.js';

/** Time source, replaceable in tests. */
export interface Clock {
  now(): number;
}

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
export interface IdempotencyKey {
  readonly scope: string;
  readonly key: string;
}

/** What `claim` found. */
export type Claim =
  | { readonly status: 'claimed'; readonly token: string }
  | { readonly status: 'in_progress'; readonly fingerprint: string }
  | { readonly status: 'completed'; readonly fingerprint: string; readonly response: Result<unknown, string> };

/** Stores idempotency keys with their payload fingerprint and the result they produced. */
export interface IdempotencyStore {
  /** Claims a key for `leaseMs`; an expired claim or an expired record is taken over. Commits on its own. */
  claim(id: IdempotencyKey, fingerprint: string, leaseMs: number): Promise<Claim>;
  /**
   * Stores the result in the ambient transaction; throws `UseCaseError('claim_lost')` if `token` no longer owns
   * the key.
   */
  complete(id: IdempotencyKey, token: string, response: Result<unknown, string>, ttlMs: number): Promise<void>;
  /** Gives the key back so a retry runs (after an unexpected error). */
  release(id: IdempotencyKey, token: string): Promise<void>;
  /** Deletes expired records and expired claims; returns how many (`retention({ idempotency: true })` calls it). */
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
}
