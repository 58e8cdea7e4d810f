// The SalesRepository in SQL: one row per product, incremented in place (concurrent consumers serialize on it).
import { inject, injectable } from 'inversify';
import { KnexUnitOfWork } from '../../adapters/knex/index.js';
import type { Sales, SalesRepository } from './repository.js';

/** The sample's sales table (see samples/sql.ts). */
export const SALES_TABLE = 'sample_sales';

/** Sales per product in Postgres or PGlite, through the ambient transaction. */
@injectable()
export class SqlSalesRepository implements SalesRepository {
  constructor(@inject(KnexUnitOfWork) private readonly uow: KnexUnitOfWork) {}

  async addPaidOrder(productId: string, qty: number): Promise<void> {
    const db = await this.uow.db();
    await db(SALES_TABLE)
      .insert({ product_id: productId, paid_orders: 1, paid_qty: qty })
      .onConflict('product_id')
      .merge({
        paid_orders: db.raw('?? + 1', [`${SALES_TABLE}.paid_orders`]),
        paid_qty: db.raw('?? + ?', [`${SALES_TABLE}.paid_qty`, qty]),
      });
  }

  async of(productId: string): Promise<Sales> {
    const db = await this.uow.db();
    const row = await db(SALES_TABLE).where({ product_id: productId }).first();
    return { productId, paidOrders: Number(row?.paid_orders ?? 0), paidQty: Number(row?.paid_qty ?? 0) };
  }
}
