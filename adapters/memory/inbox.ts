// The inbox in memory: a record made in a transaction is undone with it.
import type { Inbox } from '../../lib/ports.js';
import type { MemoryUnitOfWork } from './unit-of-work.js';

/** The memory Inbox. */
export class MemoryInbox implements Inbox {
  readonly #seen = new Set<string>();
  constructor(private readonly uow: MemoryUnitOfWork) {}

  async record(consumer: string, messageId: string): Promise<boolean> {
    const key = `${consumer}\u0000${messageId}`;
    if (this.#seen.has(key)) return false;
    this.#seen.add(key);
    this.uow.current()?.onRollback(() => this.#seen.delete(key));
    return true;
  }
}
