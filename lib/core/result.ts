// Outcomes are data: every send resolves to a Result; only programmer mistakes and unexpected exceptions throw.
import { UseCaseError } from './errors.js';

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

/** Any result, as middleware pass it along. */
export type AnyResult = Result<unknown, string>;

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

// ---- helpers: pure functions over results (u-case's Result#then / map) -----------------------------------------

/** A result's own success and failure types, for the helpers below. */
type Value<R> = R extends Ok<infer T> ? T : never;
type Codes<R> = R extends Fail<infer F> ? F : never;

/**
 * The value of a success through `fn`; a failure (and `replayed`) passes through unchanged.
 * @example const total = map(await mediator.send(GetOrder.from({ id })), (order) => order.total);
 */
export function map<R extends Result<any, any>, U>(result: R, fn: (value: Value<R>) => U): Result<U, Codes<R>> {
  if (!result.ok) return result as Fail<Codes<R>>;
  const mapped: Ok<U> = { ok: true, value: fn(result.value) };
  return result.replayed === undefined ? mapped : { ...mapped, replayed: result.replayed };
}

/**
 * A failure through `fn` (to another failure); a success passes through unchanged.
 * @example mapFailure(result, (f) => (f.kind === 'not_found' ? { ...f, message: 'No such order' } : f))
 */
export function mapFailure<R extends Result<any, any>, G extends string = Codes<R>>(
  result: R,
  fn: (failure: Failure<Codes<R>>) => Failure<G>,
): Result<Value<R>, G> {
  if (result.ok) return result as Ok<Value<R>>;
  const mapped: Fail<G> = { ok: false, failure: fn(result.failure as Failure<Codes<R>>) };
  return result.replayed === undefined ? mapped : { ...mapped, replayed: result.replayed };
}

/**
 * The next step on a success (u-case's `Result#then`): `fn` gets the value and returns a result, or a promise of one
 * (then `andThen` returns a promise); the first failure stops the chain and is returned as it is.
 * @example const paid = await andThen(await mediator.send(PlaceOrder.from(body)), (o) => mediator.send(Pay.from(o)));
 */
export function andThen<R extends Result<any, any>, U, G extends string = never>(
  result: R,
  fn: (value: Value<R>) => Promise<Result<U, G>>,
): Promise<Result<U, Codes<R> | G>>;
export function andThen<R extends Result<any, any>, U, G extends string = never>(
  result: R,
  fn: (value: Value<R>) => Result<U, G>,
): Result<U, Codes<R> | G>;
export function andThen(
  result: Result<unknown, string>,
  fn: (value: unknown) => Result<unknown, string> | Promise<Result<unknown, string>>,
): Result<unknown, string> | Promise<Result<unknown, string>> {
  return result.ok ? fn(result.value) : result;
}

/** The failure of one kind (a domain failure narrowed to one code). */
type FailureOfKind<F extends string, K extends FailureKind> = Extract<Failure<F>, { readonly kind: K }>;
type DomainCases<F extends string, Out> = {
  readonly [C in F]: (failure: FailureOfKind<F, 'domain'> & { readonly code: C }) => Out;
};
type KindCases<F extends string, Out> = {
  readonly [K in Exclude<FailureKind, 'domain'>]: (failure: FailureOfKind<F, K>) => Out;
};
/** Every failure kind, and one case per domain code the request declares (none when it declares none). */
type AllCases<T, F extends string, Out> = { readonly ok: (value: T) => Out } & KindCases<F, Out> &
  ([F] extends [never] ? { readonly domain?: never } : { readonly domain: DomainCases<F, Out> });
/** Some cases and `otherwise` for the failures left out. */
type SomeCases<T, F extends string, Out> = { readonly ok: (value: T) => Out } & Partial<KindCases<F, Out>> & {
    readonly domain?: Partial<DomainCases<F, Out>>;
    readonly otherwise: (failure: Failure<F>) => Out;
  };

/**
 * One case per outcome, checked by the compiler: `ok`, every failure kind, and under `domain` every code the
 * request declares — or `otherwise` for those left out. A code added to the command later is a compile error here.
 * @example
 * const status = match(result, {
 *   ok: () => 200, validation: () => 422, forbidden: () => 403, not_found: () => 404, invalid_transition: () => 409,
 *   conflict: () => 409, idempotency_mismatch: () => 422, in_progress: () => 409, unavailable: () => 503,
 *   domain: { insufficient_stock: () => 409, same_bin: () => 422 },
 * });
 */
export function match<R extends Result<any, any>, Out>(
  result: R,
  cases: AllCases<Value<R>, Codes<R>, Out> | SomeCases<Value<R>, Codes<R>, Out>,
): Out {
  if (result.ok) return cases.ok(result.value);
  const failure = result.failure as Failure<string>;
  const byKind = cases as unknown as Record<string, ((f: Failure<string>) => Out) | undefined>;
  const handler =
    failure.kind === 'domain'
      ? (cases.domain as Record<string, ((f: Failure<string>) => Out) | undefined> | undefined)?.[failure.code]
      : byKind[failure.kind];
  if (handler) return handler(failure);
  if ('otherwise' in cases) return cases.otherwise(failure as Failure<Codes<R>>);
  // Only reachable when the types were bypassed (a code the request does not declare came back at run time).
  throw new UseCaseError(
    'misuse',
    `match() has no case for ${describeFailure(failure)} — add it, or an otherwise case`,
    {
      cause: failure,
    },
  );
}

/**
 * The value of a success; a failure throws `UseCaseError` (kind `failed`) with the failure as `failure` (and
 * `cause`). For scripts, tests and places where a failure is a bug.
 * @example const { orderId } = unwrap(await mediator.send(PlaceOrder.from(body)));
 */
export function unwrap<R extends Result<any, any>>(result: R): Value<R> {
  if (result.ok) return result.value;
  const failure = result.failure as Failure<Codes<R>>;
  throw Object.assign(
    new UseCaseError('failed', `unwrap() of a failed result: ${describeFailure(failure)} — ${failure.message}`, {
      cause: failure,
    }),
    { failure },
  );
}

function describeFailure(failure: Failure<string>): string {
  return failure.kind === 'domain' ? `domain failure '${failure.code}'` : `'${failure.kind}' failure`;
}
