// A clock that tests set and move by hand: it satisfies the Clock port and never moves on its own.
import type { Clock } from '../core/ports.js';

/** A point in time: epoch milliseconds, a Date, or an ISO-8601 string. */
export type Instant = number | Date | string;

/**
 * A settable Clock. `now()` returns the same value until `set` or `advance` changes it.
 * @example const clock = new ManualClock('2026-01-01T00:00:00Z'); clock.advance(1_000); clock.now(); // +1 s
 */
export class ManualClock implements Clock {
  #time: number;

  constructor(start: Instant = Date.now()) {
    this.#time = toMillis(start);
  }

  /** The current time in epoch milliseconds. */
  now(): number {
    return this.#time;
  }

  /** Moves the clock to `time` (forwards or backwards). */
  set(time: Instant): void {
    this.#time = toMillis(time);
  }

  /** Moves the clock by `ms` (negative goes back). */
  advance(ms: number): void {
    if (!Number.isFinite(ms)) throw new RangeError(`advance() takes a finite number of milliseconds, got ${ms}`);
    this.#time += ms;
  }
}

/**
 * A settable clock starting at `start` (default: the real time when it is made).
 * @example const clock = manualClock('2026-01-01T00:00:00Z'); const store = new MemoryIdempotencyStore(uow, clock);
 */
export function manualClock(start?: Instant): ManualClock {
  return new ManualClock(start);
}

function toMillis(time: Instant): number {
  const ms = typeof time === 'number' ? time : typeof time === 'string' ? Date.parse(time) : time.getTime();
  if (!Number.isFinite(ms)) {
    throw new RangeError(`not a point in time: ${String(time)} — pass epoch ms, a Date or an ISO string`);
  }
  return ms;
}
