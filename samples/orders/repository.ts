// The order store, as the handlers see it (memory today, Postgres later).
import type { Order } from './order.js';

/** The container token of the OrderRepository. */
export const ORDER_REPOSITORY = Symbol.for('usecasecore.samples.OrderRepository');

/** Orders by id. Every method joins the ambient transaction. */
export interface OrderRepository {
  /** The order, locked until commit where the store can lock; undefined when there is none. */
  lock(orderId: string): Promise<Order | undefined>;
  /** The order as committed (no lock); undefined when there is none. */
  find(orderId: string): Promise<Order | undefined>;
  /** Inserts or replaces an order. */
  save(order: Order): Promise<void>;
}
