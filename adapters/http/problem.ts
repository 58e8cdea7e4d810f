// RFC 9457 problem+json: every failure kind (from the failure table) and HTTP-level error as a status and title.
import { FAILURES, type Failure, type FailureKind, type Issue } from '../../lib/core/index.js';

/** Errors raised by the HTTP layer itself, before or around the mediator. */
export type HttpErrorKind =
  | 'unauthenticated'
  | 'malformed_json'
  | 'payload_too_large'
  | 'unsupported_media_type'
  | 'bad_request'
  | 'route_not_found'
  | 'method_not_allowed'
  | 'internal';

/** Every `kind` a problem body can carry. */
export type ProblemKind = FailureKind | HttpErrorKind;

/** The status and title of the HTTP layer's own errors. */
const HTTP_ERRORS: Readonly<Record<HttpErrorKind, { readonly status: number; readonly title: string }>> = {
  unauthenticated: { status: 401, title: 'Unauthenticated' },
  malformed_json: { status: 400, title: 'Malformed JSON' },
  payload_too_large: { status: 413, title: 'Payload too large' },
  unsupported_media_type: { status: 415, title: 'Unsupported media type' },
  bad_request: { status: 400, title: 'Bad request' },
  route_not_found: { status: 404, title: 'Not found' },
  method_not_allowed: { status: 405, title: 'Method not allowed' },
  internal: { status: 500, title: 'Internal server error' },
};

/**
 * The status and title of every problem kind: a failure's from the failure table (`FAILURES`), the HTTP layer's own
 * errors from this module. The OpenAPI document reads it too.
 */
export const PROBLEMS: Readonly<Record<ProblemKind, { readonly status: number; readonly title: string }>> = {
  ...FAILURES,
  ...HTTP_ERRORS,
};

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

/** The fields a problem carries beyond kind and detail. */
export type ProblemExtra = Partial<Pick<Problem, 'code' | 'details' | 'issues' | 'from' | 'to' | 'allowed'>>;

/** What an HTTP response is made of, for any framework: `body` is JSON-serializable (or undefined: no body). */
export interface HttpReply<B = unknown> {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: B;
}

/** How statuses are chosen beyond the table. */
export interface ProblemOptions {
  /**
   * The status of a `domain` failure by its code; codes not listed get 422. A code that means "the current state
   * does not allow it" (rather than "the request is wrong") usually maps to 409.
   */
  readonly domainStatus?: Readonly<Record<string, number>>;
}

const PROBLEM_HEADERS = Object.freeze({ 'Content-Type': 'application/problem+json' });

/**
 * A problem reply from a kind, a human message and the kind's extra fields.
 * @example problem('unauthenticated', 'Send the X-Actor header to say who is acting') // status 401
 */
export function problem(
  kind: ProblemKind,
  detail: string,
  extra: ProblemExtra = {},
  options: ProblemOptions = {},
): HttpReply<Problem> {
  const domainStatus = kind === 'domain' && extra.code !== undefined ? options.domainStatus?.[extra.code] : undefined;
  const status = domainStatus ?? PROBLEMS[kind].status;
  return {
    status,
    headers: PROBLEM_HEADERS,
    body: { type: 'about:blank', status, title: PROBLEMS[kind].title, kind, detail, ...extra },
  };
}

/**
 * The problem reply of a mediator failure, carrying the fields its kind defines.
 * @example const { status, headers, body } = toProblem(result.failure, { domainStatus: { insufficient_stock: 409 } });
 */
export function toProblem(failure: Failure, options: ProblemOptions = {}): HttpReply<Problem> {
  switch (failure.kind) {
    case 'validation':
      return problem(failure.kind, failure.message, { issues: failure.issues }, options);
    case 'invalid_transition':
      return problem(
        failure.kind,
        failure.message,
        { from: failure.from, to: failure.to, allowed: failure.allowed },
        options,
      );
    case 'domain': {
      const extra =
        failure.details === undefined ? { code: failure.code } : { code: failure.code, details: failure.details };
      return problem(failure.kind, failure.message, extra, options);
    }
    default:
      return problem(failure.kind, failure.message, {}, options);
  }
}

/**
 * The problem reply of an error the HTTP framework raised before a route ran: a body that is not JSON (400), too
 * large (413), in a charset or encoding it cannot read (415), compressed wrongly (400), a URL that does not decode
 * (400), or another client error with a 4xx status. Anything else is a 500 that reveals nothing of the error (log it).
 * @example const reply = problemOfError(error); if (reply.status === 500) logger.error(error);
 */
export function problemOfError(error: unknown): HttpReply<Problem> {
  const { type, status, code, name, message } = (error ?? {}) as Record<string, unknown>;
  const said = typeof message === 'string' ? message : 'Bad request';
  if (type === 'entity.parse.failed') return problem('malformed_json', said);
  if (type === 'entity.too.large' || status === 413) return problem('payload_too_large', said);
  if (status === 415) return problem('unsupported_media_type', said);
  if (name === 'URIError') return problem('bad_request', 'The URL has malformed percent-encoding');
  if (typeof code === 'string' && code.startsWith('Z_')) return problem('bad_request', 'The body does not decompress');
  if (typeof status === 'number' && status >= 400 && status < 500) return problem('bad_request', said);
  return problem('internal', 'Something went wrong; nothing was committed');
}
