// The inventory's repositories in SQL: bins are rows, locked FOR UPDATE by the reads that decide a write; movements
// and alerts are appended, and read newest first.
import { inject, injectable } from 'inversify';
import { KnexUnitOfWork } from '../../adapters/knex/index.js';
import type {
  InventoryRepository,
  LowStockAlertRecord,
  LowStockAlertRepository,
  Movement,
  MovementRepository,
} from './repository.js';

/** The sample's stock table (see samples/sql.ts). */
export const STOCK_TABLE = 'sample_stock';
/** The sample's movement history (see samples/sql.ts). */
export const MOVEMENT_TABLE = 'sample_movements';
/** The low-stock alerts sent (see samples/sql.ts). */
export const LOW_STOCK_ALERT_TABLE = 'sample_low_stock_alerts';

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

/** A movement's row. */
interface MovementRow {
  readonly movement_id: string;
  readonly product_id: string;
  readonly from_bin_id: string;
  readonly to_bin_id: string;
  readonly qty: number;
  readonly source_qty_after: number;
  readonly dest_qty_after: number;
  readonly actor: string | null;
  readonly reason: string;
  readonly at: Date | string;
}

/** Movements in Postgres or PGlite, through the ambient transaction; `position` orders them as they were written. */
@injectable()
export class SqlMovementRepository implements MovementRepository {
  constructor(@inject(KnexUnitOfWork) private readonly uow: KnexUnitOfWork) {}

  async add(movement: Movement): Promise<void> {
    const db = await this.uow.db();
    await db(MOVEMENT_TABLE).insert({
      movement_id: movement.movementId,
      product_id: movement.productId,
      from_bin_id: movement.fromBinId,
      to_bin_id: movement.toBinId,
      qty: movement.qty,
      source_qty_after: movement.sourceQtyAfter,
      dest_qty_after: movement.destQtyAfter,
      actor: movement.actor,
      reason: movement.reason,
      at: movement.at,
    });
  }

  async latest(productId: string, limit: number): Promise<Movement[]> {
    const db = await this.uow.db();
    const rows: MovementRow[] = await db(MOVEMENT_TABLE)
      .where({ product_id: productId })
      .orderBy('position', 'desc')
      .limit(limit);
    return rows.map((row) => ({
      movementId: row.movement_id,
      productId: row.product_id,
      fromBinId: row.from_bin_id,
      toBinId: row.to_bin_id,
      qty: Number(row.qty),
      sourceQtyAfter: Number(row.source_qty_after),
      destQtyAfter: Number(row.dest_qty_after),
      actor: row.actor,
      reason: row.reason,
      at: new Date(row.at).toISOString(),
    }));
  }
}

/** An alert's row. */
interface LowStockAlertRow {
  readonly alert_id: string;
  readonly job_id: string;
  readonly movement_id: string;
  readonly product_id: string;
  readonly bin_id: string;
  readonly qty: number;
  readonly threshold: number;
  readonly at: Date | string;
}

/** Alerts in Postgres or PGlite, through the ambient transaction; `job_id` is unique, so a job records one. */
@injectable()
export class SqlLowStockAlertRepository implements LowStockAlertRepository {
  constructor(@inject(KnexUnitOfWork) private readonly uow: KnexUnitOfWork) {}

  async add(alert: LowStockAlertRecord): Promise<void> {
    const db = await this.uow.db();
    await db(LOW_STOCK_ALERT_TABLE)
      .insert({
        alert_id: alert.alertId,
        job_id: alert.jobId,
        movement_id: alert.movementId,
        product_id: alert.productId,
        bin_id: alert.binId,
        qty: alert.qty,
        threshold: alert.threshold,
        at: alert.at,
      })
      .onConflict('job_id')
      .ignore();
  }

  async latest(productId: string, limit: number): Promise<LowStockAlertRecord[]> {
    const db = await this.uow.db();
    const rows: LowStockAlertRow[] = await db(LOW_STOCK_ALERT_TABLE)
      .where({ product_id: productId })
      .orderBy('position', 'desc')
      .limit(limit);
    return rows.map((row) => ({
      alertId: row.alert_id,
      jobId: row.job_id,
      movementId: row.movement_id,
      productId: row.product_id,
      binId: row.bin_id,
      qty: Number(row.qty),
      threshold: Number(row.threshold),
      at: new Date(row.at).toISOString(),
    }));
  }
}
