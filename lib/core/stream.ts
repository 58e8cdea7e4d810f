// Streaming queries (MediatR's CreateStream): a query whose handler returns ok(asyncIterable), opened through the
// middleware that take part in streams (`rules.stream`) and iterated by the caller, who pulls.

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
