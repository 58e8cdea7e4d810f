// The inbox in memory: a record made in a transaction is undone with it.
import type { Clock, Inbox } from '../../lib/core/ports.js';
import { purgeOlderThan } from './purge.js';
import type { MemoryUnitOfWork } from './unit-of-work.js';

/** The memory Inbox. Records keep the Clock's time they were made at, for `purge`. */
export class MemoryInbox implements Inbox {
  /** consumer + message id → processed at, oldest first (insertion order). */
  readonly #seen = new Map<string, number>();
  constructor(
    private readonly uow: MemoryUnitOfWork,
    private readonly clock: Clock = Date,
  ) {}

  async record(consumer: string, messageId: string): Promise<boolean> {
    const key = `${consumer}\u0000${messageId}`;
    if (this.#seen.has(key)) return false;
    this.#seen.set(key, this.clock.now());
    this.uow.current()?.onRollback(() => this.#seen.delete(key));
    return true;
  }

  /** Forgets records made more than `olderThanMs` ago; returns how many. */
  async purge(olderThanMs: number): Promise<number> {
    return purgeOlderThan(this.#seen, this.clock.now() - olderThanMs);
  }
}
