// The memory adapters' retention: one oldest-first walk over a map of times.

/**
 * Deletes the entries of `times` (key → time, oldest first in insertion order) older than `cutoff`; returns how
 * many. Stops at the first younger entry: the rest are younger still (after a clock went back, they merely wait).
 * @example const removed = purgeOlderThan(this.#seen, this.clock.now() - olderThanMs);
 */
export function purgeOlderThan<K>(times: Map<K, number>, cutoff: number): number {
  let removed = 0;
  for (const [key, time] of times) {
    if (time >= cutoff) break;
    times.delete(key);
    removed++;
  }
  return removed;
}
