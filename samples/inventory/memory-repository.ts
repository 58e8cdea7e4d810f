// The InventoryRepository in memory: a TransactionalMap, so a rolled-back send leaves no stock change behind.
import { inject, injectable } from 'inversify';
import { MemoryUnitOfWork, TransactionalMap } from '../../adapters/memory/index.js';
import type { InventoryRepository } from './repository.js';

/** Keeps each product's bins as an immutable map, replaced on every write (so undo restores the old one). */
@injectable()
export class MemoryInventoryRepository implements InventoryRepository {
  readonly #products: TransactionalMap<string, ReadonlyMap<string, number>>;

  constructor(@inject(MemoryUnitOfWork) uow: MemoryUnitOfWork) {
    this.#products = new TransactionalMap(uow);
  }

  async lockBins(productId: string, binIds: readonly string[]): Promise<ReadonlyMap<string, number>> {
    const bins = this.#products.get(productId);
    return new Map(binIds.map((binId) => [binId, bins?.get(binId) ?? 0]));
  }

  async setQuantity(productId: string, binId: string, qty: number): Promise<void> {
    if (qty < 0) throw new RangeError(`Bin ${binId} of ${productId} cannot hold ${qty}`);
    this.#products.set(productId, new Map(this.#products.get(productId)).set(binId, qty));
  }

  async bins(productId: string): Promise<ReadonlyMap<string, number>> {
    return new Map(this.#products.get(productId));
  }
}
