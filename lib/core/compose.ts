// Koa's onion, returning the result as MediatR's behaviors do.
import { UseCaseError } from './errors.js';

/** A step of the onion: do work, call `next()` at most once, return (or replace) its result. */
export type Step<C, R> = (ctx: C, next: () => Promise<R>) => Promise<R>;

/**
 * Composes steps into one function; `last` runs after the innermost step (the handler).
 * @example const run = compose([timing, audit]); await run(ctx, (ctx) => handler.handle(ctx));
 */
export function compose<C, R>(steps: ReadonlyArray<Step<C, R>>): (ctx: C, last: (ctx: C) => Promise<R>) => Promise<R> {
  return function composed(ctx, last) {
    let index = -1;
    return dispatch(0);
    function dispatch(i: number): Promise<R> {
      if (i <= index) {
        return Promise.reject(
          new UseCaseError(
            'misuse',
            `next() called multiple times in middleware "${steps[i - 1]?.name || i - 1}" — ` +
              'call it once and return its result',
          ),
        );
      }
      index = i;
      try {
        if (i === steps.length) return Promise.resolve(last(ctx));
        return Promise.resolve(steps[i]!(ctx, () => dispatch(i + 1)));
      } catch (err) {
        return Promise.reject(err);
      }
    }
  };
}
