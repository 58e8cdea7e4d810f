// Streaming queries (MediatR's CreateStream): a query whose handler returns ok(asyncIterable), opened through a
// stack of its own (validation, unit of work, audit of the opening, policy) and iterated by the caller, who pulls.
import type { Middleware } from './middleware.js';

/** The middleware a stream's opening runs through, when they are in the mediator's stack (observers too). */
const STREAM_MIDDLEWARE = new Set(['validation', 'unitOfWork', 'audit', 'policy']);

/** The opening stack of a streamed request: no idempotency (nothing to replay), no transition, no publish. */
export function streamStack(stack: readonly Middleware[]): Middleware[] {
  return stack.filter((m) => m.rules?.observer || STREAM_MIDDLEWARE.has(m.name));
}

/**
 * `source` pulled one item at a time (the caller's pace is the backpressure): stops between items once `signal`
 * aborts, and however the iteration ends (done, a `break`, an error, an abort) calls the source's `return()`, so
 * a generator's `finally` runs — a cursor closes, its connection goes back to the pool.
 */
export async function* guarded<T>(source: AsyncIterable<T>, signal: AbortSignal | undefined): AsyncGenerator<T> {
  const iterator = source[Symbol.asyncIterator]();
  let done = false;
  try {
    for (;;) {
      signal?.throwIfAborted();
      const next = await iterator.next();
      if (next.done) {
        done = true;
        return;
      }
      signal?.throwIfAborted();
      yield next.value;
    }
  } finally {
    if (!done) await iterator.return?.();
  }
}

/** True for an object that can be iterated with `for await`. */
export function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> {
  return typeof (value as { [Symbol.asyncIterator]?: unknown } | null)?.[Symbol.asyncIterator] === 'function';
}
