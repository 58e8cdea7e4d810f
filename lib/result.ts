// Outcomes are data: every send resolves to a Result; only programmer mistakes and unexpected exceptions throw.

/** A validation problem: `path` is dot-separated (`'lines.0.qty'`), empty for the whole request. */
export interface Issue {
  readonly path: string;
  readonly message: string;
}

/** Every failure a send can resolve to, discriminated by `kind`. `F` is the handler's own domain codes. */
export type Failure<F extends string = string> =
  | { readonly kind: 'validation'; readonly message: string; readonly issues: readonly Issue[] }
  | { readonly kind: 'forbidden'; readonly message: string }
  | { readonly kind: 'not_found'; readonly message: string }
  | {
      readonly kind: 'invalid_transition';
      readonly message: string;
      readonly from: string;
      readonly to: string;
      readonly allowed: readonly string[];
    }
  | { readonly kind: 'conflict'; readonly message: string }
  | { readonly kind: 'idempotency_mismatch'; readonly message: string }
  | { readonly kind: 'in_progress'; readonly message: string }
  | { readonly kind: 'domain'; readonly message: string; readonly code: F; readonly details?: unknown }
  | { readonly kind: 'unavailable'; readonly message: string };

/** The failure kinds, for exhaustive mapping (e.g. to HTTP statuses). */
export type FailureKind = Failure['kind'];

/** A successful outcome; `replayed` is true when an idempotent replay returned a stored result. */
export interface Ok<T> {
  readonly ok: true;
  readonly value: T;
  readonly replayed?: boolean;
}
/** A failed outcome. */
export interface Fail<F extends string = string> {
  readonly ok: false;
  readonly failure: Failure<F>;
  readonly replayed?: boolean;
}
/** What `mediator.send` resolves to. */
export type Result<T, F extends string = never> = Ok<T> | Fail<F>;

/**
 * A success.
 * @example return ok({ orderId })
 */
export function ok<T>(value: T): Ok<T> {
  return { ok: true, value };
}

/**
 * A domain failure with the handler's own code (declared in `Command<R, F>`).
 * @example return fail('insufficient_stock', { available: 3 })
 */
export function fail<F extends string>(code: F, details?: unknown, message = `Domain rule failed: ${code}`): Fail<F> {
  return {
    ok: false,
    failure: details === undefined ? { kind: 'domain', message, code } : { kind: 'domain', message, code, details },
  };
}

/**
 * A failure of one of the built-in kinds other than `domain`.
 * @example return failure({ kind: 'not_found', message: `No order ${id}` })
 */
export function failure(f: Exclude<Failure<never>, { kind: 'domain' }>): Fail<never> {
  return { ok: false, failure: f };
}

/** Shorthand for the common `not_found` failure. @example return notFound(`No order ${id}`) */
export function notFound(message: string): Fail<never> {
  return failure({ kind: 'not_found', message });
}
