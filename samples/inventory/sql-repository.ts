// The InventoryRepository in SQL: bins are rows, locked FOR UPDATE by the reads that decide a write.
import { inject, injectable } from 'inversify';
import { KnexUnitOfWork } from '../../adapters/knex/index.js';
import type { InventoryRepository } from './repository.js';

/** The sample's stock table (see samples/sql.ts). */
export const STOCK_TABLE = 'sample_stock';

/** Stock per (product, bin) in Postgres or PGlite, through the ambient transaction. */
@injectable()
export class SqlInventoryRepository implements InventoryRepository {
  constructor(@inject(KnexUnitOfWork) private readonly uow: KnexUnitOfWork) {}

  async lockBins(productId: string, binIds: readonly string[]): Promise<ReadonlyMap<string, number>> {
    const db = await this.uow.db();
    const sorted = [...new Set(binIds)].sort(); // one lock order everywhere, so two moves A→B and B→A cannot deadlock
    // A bin never stocked has no row to lock; create it (at 0) first, so two sends into a new bin serialize too.
    await db(STOCK_TABLE)
      .insert(sorted.map((binId) => ({ product_id: productId, bin_id: binId, qty: 0 })))
      .onConflict(['product_id', 'bin_id'])
      .ignore();
    const rows: Array<{ bin_id: string; qty: number }> = await db(STOCK_TABLE)
      .where({ product_id: productId })
      .whereIn('bin_id', sorted)
      .orderBy('bin_id')
      .forUpdate();
    return new Map(rows.map((row) => [row.bin_id, Number(row.qty)]));
  }

  async setQuantity(productId: string, binId: string, qty: number): Promise<void> {
    if (qty < 0) throw new RangeError(`Bin ${binId} of ${productId} cannot hold ${qty}`);
    const db = await this.uow.db();
    await db(STOCK_TABLE)
      .insert({ product_id: productId, bin_id: binId, qty })
      .onConflict(['product_id', 'bin_id'])
      .merge();
  }

  async bins(productId: string): Promise<ReadonlyMap<string, number>> {
    const db = await this.uow.db();
    const rows: Array<{ bin_id: string; qty: number }> = await db(STOCK_TABLE)
      .where({ product_id: productId })
      .orderBy('bin_id');
    return new Map(rows.map((row) => [row.bin_id, Number(row.qty)]));
  }
}
