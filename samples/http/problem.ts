// RFC 9457 problem+json: the one table mapping every failure kind (and HTTP-level error) to a status and title.
import type { Response } from 'express';
import type { Failure, FailureKind, Issue } from '../../lib/index.js';

/** Errors raised by the HTTP layer itself, before or around the mediator. */
export type HttpErrorKind = 'unauthenticated' | 'malformed_json' | 'payload_too_large' | 'bad_request' | 'route_not_found' | 'internal';

/** Every `kind` a problem body can carry. */
export type ProblemKind = FailureKind | HttpErrorKind;

const PROBLEMS: Readonly<Record<ProblemKind, { readonly status: number; readonly title: string }>> = {
  validation: { status: 422, title: 'Invalid request' },
  forbidden: { status: 403, title: 'Forbidden' },
  not_found: { status: 404, title: 'Not found' },
  invalid_transition: { status: 409, title: 'Invalid transition' },
  conflict: { status: 409, title: 'Conflict' },
  idempotency_mismatch: { status: 422, title: 'Idempotency key reused with another request' },
  in_progress: { status: 409, title: 'Request in progress' },
  domain: { status: 422, title: 'Business rule violated' },
  unavailable: { status: 503, title: 'Service unavailable' },
  unauthenticated: { status: 401, title: 'Unauthenticated' },
  malformed_json: { status: 400, title: 'Malformed JSON' },
  payload_too_large: { status: 413, title: 'Payload too large' },
  bad_request: { status: 400, title: 'Bad request' },
  route_not_found: { status: 404, title: 'Not found' },
  internal: { status: 500, title: 'Internal server error' },
};

/** Domain codes that mean "the current state does not allow it" (409) rather than "the request is wrong" (422). */
const CONFLICT_CODES: ReadonlySet<string> = new Set(['insufficient_stock']);

/**
 * The HTTP status of a problem kind (and, for `domain`, its code). This is the whole kind→status contract.
 * @example problemStatus('domain', 'insufficient_stock') // 409
 */
export function problemStatus(kind: ProblemKind, code?: string): number {
  if (kind === 'domain' && code !== undefined && CONFLICT_CODES.has(code)) return 409;
  return PROBLEMS[kind].status;
}

/** A problem+json body. `code`, `issues`, `from`/`to`/`allowed` and `details` appear where they apply. */
export interface Problem {
  readonly type: 'about:blank';
  readonly status: number;
  readonly title: string;
  readonly kind: ProblemKind;
  readonly detail: string;
  readonly code?: string;
  readonly details?: unknown;
  readonly issues?: readonly Issue[];
  readonly from?: string;
  readonly to?: string;
  readonly allowed?: readonly string[];
}

/**
 * Builds a problem body from a kind, a human message and the kind's extra fields.
 * @example problem('unauthenticated', 'Send the X-Actor header')
 */
export function problem(kind: ProblemKind, detail: string, extra: Partial<Pick<Problem, 'code' | 'details' | 'issues' | 'from' | 'to' | 'allowed'>> = {}): Problem {
  return { type: 'about:blank', status: problemStatus(kind, extra.code), title: PROBLEMS[kind].title, kind, detail, ...extra };
}

/** The problem body of a mediator failure, carrying the fields its kind defines. */
export function problemOf(failure: Failure): Problem {
  switch (failure.kind) {
    case 'validation': return problem(failure.kind, failure.message, { issues: failure.issues });
    case 'invalid_transition': return problem(failure.kind, failure.message, { from: failure.from, to: failure.to, allowed: failure.allowed });
    case 'domain': return problem(failure.kind, failure.message, failure.details === undefined ? { code: failure.code } : { code: failure.code, details: failure.details });
    default: return problem(failure.kind, failure.message);
  }
}

/** Writes a problem with its status and the `application/problem+json` content type. */
export function sendProblem(res: Response, body: Problem): void {
  res.status(body.status).type('application/problem+json').send(JSON.stringify(body));
}
