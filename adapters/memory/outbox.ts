// The outbox in memory: rows added in a transaction vanish on rollback; claims keep per-aggregate order.
import type { Clock, Outbox, OutboxMessage } from '../../lib/core/ports.js';
import { purgeOlderThan } from './purge.js';
import type { MemoryUnitOfWork } from './unit-of-work.js';

interface Row {
  message: OutboxMessage;
  status: 'staged' | 'pending' | 'claimed' | 'parked';
  attempts: number;
  error?: string;
}

/**
 * The memory Outbox. A sent message leaves the backlog at once; only its id and send time stay behind until
 * `purgeSent` (as the knex outbox keeps its sent rows), so claims never walk past sent messages.
 */
export class MemoryOutbox implements Outbox {
  readonly #rows = new Map<string, Row>();
  /** Sent ids and when they were sent, oldest first (insertion order). */
  readonly #sent = new Map<string, number>();
  constructor(
    private readonly uow: MemoryUnitOfWork,
    private readonly clock: Clock = Date,
  ) {}

  async add(all: readonly OutboxMessage[]): Promise<void> {
    const tx = this.uow.current();
    const messages = all.filter((m) => !this.#rows.has(m.id) && !this.#sent.has(m.id));
    for (const message of messages) {
      this.#rows.set(message.id, { message, status: tx ? 'staged' : 'pending', attempts: 0 });
    }
    tx?.onRollback(() => {
      for (const m of messages) this.#rows.delete(m.id);
    });
    tx?.onCommit(() => {
      for (const m of messages) {
        const row = this.#rows.get(m.id);
        if (row?.status === 'staged') row.status = 'pending';
      }
    });
  }

  async claim(limit: number): Promise<OutboxMessage[]> {
    const claimed: OutboxMessage[] = [];
    const now = this.clock.now();
    // Only the oldest unsent message of an aggregate is handed out: the next one waits until it is sent or parked,
    // so a failed publish can never let a later message of the same aggregate overtake it.
    const waiting = new Set<string>();
    for (const row of this.#rows.values()) {
      if (claimed.length >= limit) break;
      if (row.status === 'parked' || row.status === 'staged') continue;
      const aggregate = row.message.aggregateId;
      if (aggregate !== undefined) {
        if (waiting.has(aggregate)) continue;
        waiting.add(aggregate);
      }
      if (row.status === 'claimed' || this.#notYet(row, now)) continue;
      row.status = 'claimed';
      claimed.push({ ...row.message, attempts: row.attempts });
    }
    return claimed;
  }

  async markSent(ids: readonly string[]): Promise<void> {
    const now = this.clock.now();
    for (const id of ids) if (this.#rows.delete(id)) this.#sent.set(id, now);
  }

  async markFailed(id: string, error: string, park: boolean): Promise<void> {
    const row = this.#rows.get(id);
    if (!row) return;
    row.attempts++;
    row.error = error;
    row.status = park ? 'parked' : 'pending';
  }

  async release(ids: readonly string[]): Promise<void> {
    for (const id of ids) {
      const row = this.#rows.get(id);
      if (row?.status === 'claimed') row.status = 'pending';
    }
  }

  async pending(): Promise<number> {
    let count = 0;
    const now = this.clock.now();
    for (const row of this.#rows.values())
      if ((row.status === 'pending' || row.status === 'claimed') && !this.#notYet(row, now)) count++;
    return count;
  }

  /** A delayed message whose time has not come. */
  #notYet(row: Row, now: number): boolean {
    return row.message.availableAt !== undefined && Date.parse(row.message.availableAt) > now;
  }

  /** Forgets messages sent more than `olderThanMs` ago; returns how many. Unsent and parked ones stay. */
  async purgeSent(olderThanMs: number): Promise<number> {
    return purgeOlderThan(this.#sent, this.clock.now() - olderThanMs);
  }

  /** How many sent messages are remembered (not yet purged). */
  sent(): number {
    return this.#sent.size;
  }

  /** Parked rows with their errors (for tests and operators). */
  parked(): Array<{ message: OutboxMessage; error: string; attempts: number }> {
    return [...this.#rows.values()]
      .filter((r) => r.status === 'parked')
      .map((r) => ({ message: r.message, error: r.error ?? '', attempts: r.attempts }));
  }
}
