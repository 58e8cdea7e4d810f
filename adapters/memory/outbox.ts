// The outbox in memory: rows added in a transaction vanish on rollback; claims keep per-aggregate order.
import type { Outbox, OutboxMessage } from '../../lib/ports.js';
import type { MemoryUnitOfWork } from './unit-of-work.js';

interface Row { message: OutboxMessage; status: 'pending' | 'claimed' | 'parked'; attempts: number; error?: string }

/** The memory Outbox. Sent rows are dropped, so memory stays bounded by the backlog. */
export class MemoryOutbox implements Outbox {
  readonly #rows = new Map<string, Row>();
  constructor(private readonly uow: MemoryUnitOfWork) {}

  async add(messages: readonly OutboxMessage[]): Promise<void> {
    for (const message of messages) this.#rows.set(message.id, { message, status: 'pending', attempts: 0 });
    this.uow.current()?.onRollback(() => { for (const m of messages) this.#rows.delete(m.id); });
  }

  async claim(limit: number): Promise<OutboxMessage[]> {
    const claimed: OutboxMessage[] = [];
    const blocked = new Set<string>(); // aggregates with an earlier message in flight elsewhere: wait for it
    for (const row of this.#rows.values()) {
      if (claimed.length >= limit) break;
      const aggregate = row.message.aggregateId;
      if (row.status === 'parked') continue;
      if (row.status === 'claimed' || (aggregate !== undefined && blocked.has(aggregate))) {
        if (aggregate !== undefined) blocked.add(aggregate);
        continue;
      }
      row.status = 'claimed';
      claimed.push({ ...row.message, attempts: row.attempts });
    }
    return claimed;
  }

  async markSent(ids: readonly string[]): Promise<void> {
    for (const id of ids) this.#rows.delete(id);
  }

  async markFailed(id: string, error: string, park: boolean): Promise<void> {
    const row = this.#rows.get(id);
    if (!row) return;
    row.attempts++;
    row.error = error;
    row.status = park ? 'parked' : 'pending';
  }

  async pending(): Promise<number> {
    let count = 0;
    for (const row of this.#rows.values()) if (row.status !== 'parked') count++;
    return count;
  }

  /** Parked rows with their errors (for tests and operators). */
  parked(): Array<{ message: OutboxMessage; error: string; attempts: number }> {
    return [...this.#rows.values()].filter((r) => r.status === 'parked').map((r) => ({ message: r.message, error: r.error ?? '', attempts: r.attempts }));
  }
}
