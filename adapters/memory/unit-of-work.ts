// In-memory transactions: serialized by a mutex (so every memory transaction is serializable), undone on rollback.
import { AsyncLocalStorage } from 'node:async_hooks';
import type { UnitOfWork } from '../../lib/core/ports.js';

/** Where a savepoint begins: the lengths of the undo log and of the deferred writes. */
interface Mark {
  readonly undo: number;
  readonly deferred: number;
}

/** A memory transaction: an undo log that savepoints cut into, and writes deferred to its end. */
export class MemoryTransaction {
  readonly #undo: Array<() => void> = [];
  readonly #commit: Array<() => void> = [];
  readonly #end: Array<() => void> = [];
  readonly #deferred: Array<{ readonly write: () => void; readonly durable: boolean }> = [];
  /** Registers how to undo a write made in this transaction. */
  onRollback(undo: () => void): void {
    this.#undo.push(undo);
  }
  /** Registers what to do once the outermost transaction committed. */
  onCommit(fn: () => void): void {
    this.#commit.push(fn);
  }
  /** Registers what to do when the outermost transaction ended (committed or rolled back). */
  onEnd(fn: () => void): void {
    this.#end.push(fn);
  }
  /** Queues a write for the end of the outermost transaction (see `MemoryUnitOfWork.defer`). @internal */
  defer(write: () => void, durable: boolean): void {
    this.#deferred.push({ write, durable });
  }

  /** @internal Writes the deferred writes: all of them after a commit, the durable ones after a rollback. */
  flush(committed: boolean): void {
    for (const { write, durable } of this.#deferred.splice(0)) if (committed || durable) write();
  }

  /** @internal */ commit(): void {
    for (const fn of this.#commit.splice(0)) fn();
  }
  /** @internal */ end(): void {
    for (const fn of this.#end.splice(0)) fn();
  }
  /** Where a savepoint begins. */
  get mark(): Mark {
    return { undo: this.#undo.length, deferred: this.#deferred.length };
  }
  /** Undoes the writes made since `mark`, and drops the deferred ones that are not durable. */
  rollbackTo(mark: Mark): void {
    while (this.#undo.length > mark.undo) this.#undo.pop()!();
    const kept = this.#deferred.slice(mark.deferred).filter((write) => write.durable);
    this.#deferred.splice(mark.deferred, Infinity, ...kept);
  }
}

/**
 * The memory UnitOfWork. Memory stores and repositories call `current()` to register undo steps.
 * @example const tx = uow.current(); map.set(k, v); tx?.onRollback(() => map.delete(k));
 */
export class MemoryUnitOfWork implements UnitOfWork {
  #locked = false;
  readonly #waiters: Array<() => void> = [];

  /** The ambient transaction, if any. */
  current(): MemoryTransaction | undefined {
    for (let frame = ambient.getStore(); frame; frame = frame.outer) if (frame.uow === this) return frame.tx;
    return undefined;
  }

  /**
   * Runs `write` at the end of the ambient transaction, just before it commits — or, when `durable` (an outcome
   * record of a failure), after it rolls back too. Outside a transaction it runs at once.
   * @example uow.defer(() => records.push(record), record.outcome !== 'ok');
   * @internal The library's stores write their outcome records through it.
   */
  defer(write: () => void, durable: boolean): void {
    const tx = this.current();
    if (tx) tx.defer(write, durable);
    else write();
  }

  async transaction<T>(work: () => Promise<T>, shouldCommit: (value: T) => boolean): Promise<T> {
    const outer = this.current();
    if (outer) return this.#attempt(outer, outer.mark, work, shouldCommit);
    if (this.#locked) await new Promise<void>((resolve) => this.#waiters.push(resolve));
    else this.#locked = true;
    const tx = new MemoryTransaction();
    try {
      let committed = false;
      let value: T;
      try {
        value = await ambient.run({ uow: this, tx, outer: ambient.getStore() }, () =>
          this.#attempt(tx, tx.mark, work, (v) => (committed = shouldCommit(v))),
        );
      } catch (error) {
        tx.flush(false);
        throw error;
      }
      tx.flush(committed);
      if (committed) tx.commit();
      return value;
    } finally {
      tx.end();
      // Hand the lock straight to the next waiter (FIFO), or free it.
      const next = this.#waiters.shift();
      if (next) next();
      else this.#locked = false;
    }
  }

  isRetryable(): boolean {
    return false;
  }
  isUnavailable(): boolean {
    return false;
  }

  async #attempt<T>(
    tx: MemoryTransaction,
    mark: Mark,
    work: () => Promise<T>,
    shouldCommit: (value: T) => boolean,
  ): Promise<T> {
    try {
      const value = await work();
      if (!shouldCommit(value)) tx.rollbackTo(mark);
      return value;
    } catch (error) {
      tx.rollbackTo(mark);
      throw error;
    }
  }
}

// One AsyncLocalStorage shared by every MemoryUnitOfWork. On Node 20 an enabled AsyncLocalStorage is never dropped
// and every promise created anywhere in the process walks all of them, so one per instance (per test container)
// made the whole process slower with every container built.
interface Frame {
  readonly uow: MemoryUnitOfWork;
  readonly tx: MemoryTransaction;
  readonly outer: Frame | undefined;
}
const ambient = new AsyncLocalStorage<Frame>();

/**
 * A Map whose writes are undone when the ambient memory transaction rolls back (for memory repositories).
 * @example const balances = new TransactionalMap<string, number>(uow); balances.set('sku-1/A', 10);
 */
export class TransactionalMap<K, V> {
  readonly #map = new Map<K, V>();
  constructor(private readonly uow: MemoryUnitOfWork) {}
  get(key: K): V | undefined {
    return this.#map.get(key);
  }
  has(key: K): boolean {
    return this.#map.has(key);
  }
  values(): IterableIterator<V> {
    return this.#map.values();
  }
  entries(): IterableIterator<[K, V]> {
    return this.#map.entries();
  }
  get size(): number {
    return this.#map.size;
  }
  set(key: K, value: V): void {
    const had = this.#map.has(key),
      before = this.#map.get(key);
    this.#map.set(key, value);
    this.uow.current()?.onRollback(() => (had ? this.#map.set(key, before as V) : this.#map.delete(key)));
  }
  delete(key: K): void {
    if (!this.#map.has(key)) return;
    const before = this.#map.get(key) as V;
    this.#map.delete(key);
    this.uow.current()?.onRollback(() => this.#map.set(key, before));
  }
}
