// What each failure kind means wherever it is read: the HTTP kit's status, a consumer's disposition, whether
// idempotency stores it. The one place these rules are decided.
import type { AnyResult, FailureKind } from './result.js';

/** The rules of one failure kind. */
export interface FailureRule {
  /** The HTTP status of its problem+json reply. */
  readonly status: number;
  /** The problem's title. */
  readonly title: string;
  /** The same request, sent again later, may succeed: the state or the store changes meanwhile. */
  readonly transient: boolean;
  /** What a consumer does with the message whose send ended so: ack it, retry it later, or dead-letter it. */
  readonly consumer: 'ack' | 'retry' | 'dead';
  /** Idempotency stores it under the key and replays it (a failure not stored lets a retry with the key run). */
  readonly stored: boolean;
}

/**
 * Every failure kind's rules.
 * @example FAILURES[result.failure.kind].status // 409 for 'conflict'
 */
export const FAILURES: { readonly [K in FailureKind]: FailureRule } = {
  // A corrected request may reuse the key; the same message never parses, so it is dead-lettered.
  validation: { status: 422, title: 'Invalid request', transient: false, consumer: 'dead', stored: false },
  forbidden: { status: 403, title: 'Forbidden', transient: false, consumer: 'ack', stored: true },
  not_found: { status: 404, title: 'Not found', transient: false, consumer: 'ack', stored: true },
  invalid_transition: { status: 409, title: 'Invalid transition', transient: false, consumer: 'ack', stored: true },
  conflict: { status: 409, title: 'Conflict', transient: true, consumer: 'retry', stored: false },
  idempotency_mismatch: {
    status: 422,
    title: 'Idempotency key reused with another request',
    transient: false,
    consumer: 'ack',
    stored: false, // the key keeps the first request's result
  },
  in_progress: { status: 409, title: 'Request in progress', transient: true, consumer: 'retry', stored: false },
  domain: { status: 422, title: 'Business rule violated', transient: false, consumer: 'ack', stored: true },
  unavailable: { status: 503, title: 'Service unavailable', transient: true, consumer: 'retry', stored: false },
};

/**
 * The rule of a result's failure, or undefined for a success.
 * @example if (ruleOf(result)?.stored) await store.complete(...)
 */
export function ruleOf(result: AnyResult): FailureRule | undefined {
  return result.ok ? undefined : FAILURES[result.failure.kind];
}
