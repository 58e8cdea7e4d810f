// Requests carry their schema (static) and their result/failure types (phantom), so `send` infers both.
import { MIDDLEWARE } from './names.js';
import type { InferOutput, StandardSchemaV1 } from './schema.js';

declare const RESULT: unique symbol;
const RAW = Symbol('usecasecore.raw');
const UNSAFE_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/**
 * A job type's retry policy (a `static retry` on its command class): attempts before it is dead-lettered, and an
 * exponential backoff with jitter between them (`backoff()` in `usecasecore/jobs`).
 * @example
 * class SendReceipt extends Command(schema) { static readonly retry: RetryPolicy = { attempts: 8, baseMs: 500 } }
 */
export interface RetryPolicy {
  /** Deliveries before the job is dead-lettered. Default: the worker's `maxAttempts` (5). */
  readonly attempts?: number;
  /** The first wait; it doubles with each attempt. Default 100 ms. */
  readonly baseMs?: number;
  /** The longest wait. Default 30 s. */
  readonly maxMs?: number;
}

/** What a request does: a command changes state, a query reads, an event is a fact published after commit. */
export type RequestKind = 'command' | 'query' | 'event';

/** The instance side every request shares. `R`/`F` exist only for type inference. */
export abstract class Request<R = unknown, F extends string = never> {
  declare readonly [RESULT]?: { result: R; failure: F };
}

/** Any request instance. */
export type AnyRequest = Request<any, any>;
/** The success value type of a request. */
export type ResultOf<C> = C extends Request<infer R, any> ? R : never;
/** The domain failure codes of a request. */
export type FailureOf<C> = C extends Request<any, infer F> ? F : never;

/** The static side of a request class: what the mediator reads to validate, name and route it. */
export interface RequestClass<T extends AnyRequest = AnyRequest> {
  new (data: any): T;
  /** Wraps untrusted input; validation parses it before any handler sees it. */
  from<X>(this: new (data: any) => X, input: unknown): X;
  readonly kind: RequestKind;
  readonly schema: StandardSchemaV1;
  /** Name used in routing keys, audit and idempotency; defaults to the class name. */
  readonly type?: string | undefined;
  /**
   * Middleware names this request opts out of (queries skip idempotency, audit and publish by default); a name no
   * middleware has throws at `createMediator`.
   */
  readonly skip?: readonly string[] | undefined;
  /** Payload fields never stored in audit (added to the built-in secret-looking names). */
  readonly sensitive?: readonly string[] | undefined;
  /** A job type's retry policy (`work()` reads it): attempts and backoff. */
  readonly retry?: RetryPolicy | undefined;
}

/**
 * A request class whose instances carry the parsed fields `D` and result types `R`, `F`. Subclasses may add the
 * optional statics of `RequestClass` (`type`, `skip`, `sensitive`) without `override`.
 */
export interface TypedRequestClass<D, K extends RequestKind> {
  new <R = void, F extends string = never>(data: D): Request<R, F> & Readonly<D>;
  readonly kind: K;
  readonly schema: StandardSchemaV1<unknown, D>;
  /** Wraps untrusted input (a request body); validation parses it before any handler sees it. */
  from<T>(this: new (data: any) => T, input: unknown): T;
}

function define<S extends StandardSchemaV1, K extends RequestKind>(kind: K, schema: S, skip?: readonly string[]) {
  return class extends Request<any, any> {
    static readonly kind = kind;
    static readonly schema = schema;
    static readonly skip = skip;
    constructor(data: InferOutput<S>) {
      super();
      // Copy own keys only, never through the __proto__ setter (UNSAFE_KEYS are skipped), so trusted construction
      // can't pollute either. Plain stores then one freeze: read-only at runtime as before, ~3x cheaper than a
      // defineProperty per field (request subclasses therefore cannot declare instance fields; statics are fine).
      for (const key of Object.keys(data as object)) {
        if (!UNSAFE_KEYS.has(key)) (this as Record<string, unknown>)[key] = (data as Record<string, unknown>)[key];
      }
      Object.freeze(this);
    }
    static from(input: unknown) {
      const request = Object.create(this.prototype);
      Object.defineProperty(request, RAW, { value: input });
      return request;
    }
  } as unknown as TypedRequestClass<InferOutput<S>, K>;
}

/**
 * Declares a command: a request that changes state, with its result type `R` and domain failure codes `F`.
 * @example
 * class MoveInventory extends Command(v.object({ productId: v.string(), qty: v.number() }))<
 *   { sourceQtyAfter: number }, 'insufficient_stock'> {}
 */
export function Command<S extends StandardSchemaV1>(schema: S) {
  return define('command', schema);
}

/** What a query opts out of unless it says otherwise. */
const QUERY_SKIPS = [MIDDLEWARE.idempotency, MIDDLEWARE.audit, MIDDLEWARE.publish] as const;

/**
 * Declares a query: a read that skips idempotency, audit and publish unless it opts back in.
 * @example class GetInventory extends Query(v.object({ productId: v.string() }))<{ bins: Record<string, number> }> {}
 */
export function Query<S extends StandardSchemaV1>(schema: S) {
  return define('query', schema, QUERY_SKIPS);
}

/**
 * Declares an event: a fact handlers publish with `ctx.publish`, delivered only after commit.
 * @example
 * class InventoryMoved extends Event(v.object({ productId: v.string() })) { static readonly type = 'inventory.moved' }
 */
export function Event<S extends StandardSchemaV1>(schema: S) {
  return define('event', schema);
}

/** The routing name of a request class: its `static type`, else its class name. */
export function typeOf(type: RequestClass | (abstract new (...args: any) => unknown)): string {
  return (type as RequestClass).type ?? type.name;
}

/** The untrusted input of a request made by `from()`, or its own fields when it was constructed directly. */
export function rawInput(request: object): unknown {
  return RAW in request ? (request as Record<typeof RAW, unknown>)[RAW] : payloadOf(request);
}

/** The parsed fields of a request, as plain data (for hashing, audit and the outbox). */
export function payloadOf(request: object): Record<string, unknown> {
  return { ...request };
}
