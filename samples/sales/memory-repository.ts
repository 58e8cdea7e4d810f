// The SalesRepository in memory: a TransactionalMap, so a rolled-back send counts nothing.
import { inject, injectable } from 'inversify';
import { MemoryUnitOfWork, TransactionalMap } from '../../adapters/memory/index.js';
import type { Sales, SalesRepository } from './repository.js';

/** Keeps each product's counts as an immutable record, replaced on every write (so undo restores the old one). */
@injectable()
export class MemorySalesRepository implements SalesRepository {
  readonly #products: TransactionalMap<string, Sales>;

  constructor(@inject(MemoryUnitOfWork) uow: MemoryUnitOfWork) {
    this.#products = new TransactionalMap(uow);
  }

  async addPaidOrder(productId: string, qty: number): Promise<void> {
    const { paidOrders, paidQty } = await this.of(productId);
    this.#products.set(productId, { productId, paidOrders: paidOrders + 1, paidQty: paidQty + qty });
  }

  async of(productId: string): Promise<Sales> {
    return this.#products.get(productId) ?? { productId, paidOrders: 0, paidQty: 0 };
  }
}
