// The OrderRepository in memory: a TransactionalMap, so a rolled-back send leaves no order change behind.
import { inject, injectable } from 'inversify';
import { MemoryUnitOfWork, TransactionalMap } from '../../adapters/memory/index.js';
import type { Order } from './order.js';
import type { OrderRepository } from './repository.js';

/** Orders are immutable values, replaced on save (so undo restores the previous one). */
@injectable()
export class MemoryOrderRepository implements OrderRepository {
  readonly #orders: TransactionalMap<string, Order>;

  constructor(@inject(MemoryUnitOfWork) uow: MemoryUnitOfWork) {
    this.#orders = new TransactionalMap(uow);
  }

  async lock(orderId: string): Promise<Order | undefined> {
    return this.#orders.get(orderId); // memory transactions are serialized, so a read is already exclusive
  }

  async find(orderId: string): Promise<Order | undefined> {
    return this.#orders.get(orderId);
  }

  async save(order: Order): Promise<void> {
    this.#orders.set(order.orderId, { ...order });
  }
}
