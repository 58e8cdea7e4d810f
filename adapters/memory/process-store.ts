// Processes in memory: their records and the waits of their steps, undone with the transaction that changed them.
import type { Clock, Correlation, ProcessRecord, ProcessStore, Waiter } from '../../lib/core/ports.js';
import { TransactionalMap, type MemoryUnitOfWork } from './unit-of-work.js';

/** What one correlation holds: who waits for it, or the payload of an event that came first. */
type Slot = { readonly waiter: Waiter } | { readonly payload: unknown; readonly arrivedAt: number };

const ENDED = new Set<ProcessRecord['state']>(['completed', 'compensated']);
const keyOf = (c: Correlation) => `${c.event}\u0000${c.key}`;

/** The memory ProcessStore (memory transactions run one at a time, so `lock` needs no lock of its own). */
export class MemoryProcessStore implements ProcessStore {
  readonly #processes: TransactionalMap<string, ProcessRecord>;
  readonly #slots: TransactionalMap<string, Slot>;
  /** Insertion order, for `list` (newest first); a rolled-back id is skipped when read. */
  readonly #order: string[] = [];

  constructor(
    uow: MemoryUnitOfWork,
    private readonly clock: Clock = Date,
  ) {
    this.#processes = new TransactionalMap(uow);
    this.#slots = new TransactionalMap(uow);
  }

  async add(process: ProcessRecord): Promise<void> {
    if (this.#processes.has(process.processId)) return;
    this.#processes.set(process.processId, process);
    this.#order.push(process.processId);
  }

  async lock(processId: string): Promise<ProcessRecord | undefined> {
    return this.#processes.get(processId);
  }

  async save(process: ProcessRecord): Promise<void> {
    this.#processes.set(process.processId, process);
  }

  async get(processId: string): Promise<ProcessRecord | undefined> {
    return this.#processes.get(processId);
  }

  async list(query: Parameters<ProcessStore['list']>[0] = {}): Promise<ProcessRecord[]> {
    const found: ProcessRecord[] = [];
    for (let i = this.#order.length - 1; i >= 0 && found.length < (query.limit ?? 100); i--) {
      const process = this.#processes.get(this.#order[i]!);
      if (!process || (query.tenant !== undefined && process.tenant !== query.tenant)) continue;
      if (query.states && !query.states.includes(process.state)) continue;
      found.push(process);
    }
    return found;
  }

  async wait(correlation: Correlation, waiter: Waiter): Promise<{ readonly payload: unknown } | undefined> {
    const slot = this.#slots.get(keyOf(correlation));
    if (slot && 'payload' in slot) {
      this.#slots.delete(keyOf(correlation));
      return { payload: slot.payload };
    }
    this.#slots.set(keyOf(correlation), { waiter });
    return undefined;
  }

  async signal(correlation: Correlation, payload: unknown): Promise<Waiter | undefined> {
    const slot = this.#slots.get(keyOf(correlation));
    if (slot && 'waiter' in slot) {
      this.#slots.delete(keyOf(correlation));
      return slot.waiter;
    }
    if (!slot) this.#slots.set(keyOf(correlation), { payload, arrivedAt: this.clock.now() });
    return undefined;
  }

  async unwait(correlation: Correlation): Promise<void> {
    const slot = this.#slots.get(keyOf(correlation));
    if (slot && 'waiter' in slot) this.#slots.delete(keyOf(correlation));
  }

  /** Deletes processes that ended completed or compensated more than `olderThanMs` ago, and events kept as long. */
  async purge(olderThanMs: number): Promise<number> {
    const cutoff = this.clock.now() - olderThanMs;
    let removed = 0;
    for (const [id, process] of [...this.#processes.entries()]) {
      if (!ENDED.has(process.state) || process.endedAt === undefined || Date.parse(process.endedAt) >= cutoff) continue;
      this.#processes.delete(id);
      removed++;
    }
    if (removed > 0) this.#order.splice(0, this.#order.length, ...this.#order.filter((id) => this.#processes.has(id)));
    for (const [key, slot] of [...this.#slots.entries()]) {
      if (!('arrivedAt' in slot) || slot.arrivedAt >= cutoff) continue;
      this.#slots.delete(key);
      removed++;
    }
    return removed;
  }
}
