// The middleware contract and the ordering rules each middleware declares.
import type { Context } from './context.js';
import type { PortName } from './ports.js';
import type { AnyResult } from './result.js';

/** Calls the rest of the stack (at most once, unless the middleware is `reentrant`). */
export type Next = () => Promise<AnyResult>;

/**
 * Ordering rules, checked for every request type at `createMediator`. Names are middleware names: the built-in ones
 * (`MIDDLEWARE`) or those of your own in the stack; a name that is neither throws there, listing the known ones.
 */
export interface MiddlewareRules {
  /** Must be the first middleware (after observers). */
  readonly first?: boolean;
  /** Only observes the send (tracing): goes in front of every other middleware, even a `first` one. */
  readonly observer?: boolean;
  /** Must come after these when they are in the stack. */
  readonly after?: readonly string[];
  /** Must come before these when they are in the stack. */
  readonly before?: readonly string[];
  /** Must be in the stack too, anywhere. */
  readonly requires?: readonly string[];
  /** Must run inside these (they must be in the stack, before this one). */
  readonly inside?: readonly string[];
  /** Ports that must be bound. */
  readonly ports?: readonly PortName[];
  /** `next()` runs the inner stack afresh on each call (the unit of work uses it to retry an attempt). */
  readonly reentrant?: boolean;
  /**
   * Whether it runs when a streamed query opens (`mediator.stream`). Default true; idempotency (nothing to replay),
   * transition and publish (nothing changes) and inbox say false.
   */
  readonly stream?: boolean;
}

/** A middleware: Koa's `(ctx, next)` returning the result, as MediatR's behaviors do. */
export interface Middleware {
  (ctx: Context, next: Next): Promise<AnyResult>;
  readonly rules?: MiddlewareRules;
}

/** A middleware class resolved from the container once at start-up, so it gets injected dependencies. */
export interface MiddlewareClass {
  new (...args: any[]): { handle(ctx: Context, next: Next): Promise<AnyResult> };
  readonly rules?: MiddlewareRules;
}

/**
 * Attaches ordering rules to a named middleware function.
 * @example return withRules(async function publish(ctx, next) { ... }, { inside: [MIDDLEWARE.unitOfWork] })
 */
export function withRules<M extends (ctx: Context, next: Next) => Promise<AnyResult>>(
  fn: M,
  rules: MiddlewareRules,
): M & Middleware {
  return Object.assign(fn, { rules });
}
