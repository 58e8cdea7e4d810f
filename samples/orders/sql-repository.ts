// The OrderRepository in SQL: `lock` reads the order FOR UPDATE, so lifecycle checks and writes cannot interleave.
import { inject, injectable } from 'inversify';
import { KnexUnitOfWork } from '../../adapters/knex/index.js';
import type { Order } from './order.js';
import type { OrderRepository } from './repository.js';

/** The sample's order table (see samples/sql.ts). */
export const ORDER_TABLE = 'sample_orders';

interface Row {
  order_id: string;
  status: Order['status'];
  product_id: string;
  bin_id: string;
  qty: number;
  owner: string;
}

/** Orders in Postgres or PGlite, through the ambient transaction. */
@injectable()
export class SqlOrderRepository implements OrderRepository {
  constructor(@inject(KnexUnitOfWork) private readonly uow: KnexUnitOfWork) {}

  async lock(orderId: string): Promise<Order | undefined> {
    const db = await this.uow.db();
    return toOrder(await db<Row>(ORDER_TABLE).where({ order_id: orderId }).forUpdate().first());
  }

  async find(orderId: string): Promise<Order | undefined> {
    const db = await this.uow.db();
    return toOrder(await db<Row>(ORDER_TABLE).where({ order_id: orderId }).first());
  }

  async save(order: Order): Promise<void> {
    const db = await this.uow.db();
    await db(ORDER_TABLE)
      .insert({
        order_id: order.orderId,
        status: order.status,
        product_id: order.productId,
        bin_id: order.binId,
        qty: order.qty,
        owner: order.owner,
      })
      .onConflict('order_id')
      .merge();
  }
}

function toOrder(row: Row | undefined): Order | undefined {
  return (
    row && {
      orderId: row.order_id,
      status: row.status,
      productId: row.product_id,
      binId: row.bin_id,
      qty: Number(row.qty),
      owner: row.owner,
    }
  );
}
