// The inventory's stores, as the handlers see them: stock per bin, the movement history, the low-stock alerts sent.
import { fail, type Fail } from '../../lib/core/index.js';

/** The container token of the InventoryRepository. */
export const INVENTORY_REPOSITORY = Symbol.for('usecasecore.samples.InventoryRepository');

/** Stock quantities per product and bin. Every method joins the ambient transaction. */
export interface InventoryRepository {
  /** The quantities of `binIds` (0 for a bin never stocked), locked until commit where the store can lock. */
  lockBins(productId: string, binIds: readonly string[]): Promise<ReadonlyMap<string, number>>;
  /** Sets one bin's quantity (never negative). */
  setQuantity(productId: string, binId: string, qty: number): Promise<void>;
  /** Every bin of a product with its quantity (empty for an unknown product). */
  bins(productId: string): Promise<ReadonlyMap<string, number>>;
}

/**
 * The `insufficient_stock` failure, when `available` cannot cover `requested` (else undefined).
 * @example const short = insufficientStock(available, cmd.qty); if (short) return short;
 */
export function insufficientStock(available: number, requested: number): Fail<'insufficient_stock'> | undefined {
  if (available >= requested) return undefined;
  return fail('insufficient_stock', { available, requested }, `Only ${available} in stock, ${requested} requested`);
}

/** The container token of the MovementRepository. */
export const MOVEMENT_REPOSITORY = Symbol.for('usecasecore.samples.MovementRepository');

/** One move of stock between two bins, as it committed (the movement history keeps every one). */
export interface Movement {
  readonly movementId: string;
  readonly productId: string;
  readonly fromBinId: string;
  readonly toBinId: string;
  readonly qty: number;
  /** What the source bin held after the move. */
  readonly sourceQtyAfter: number;
  /** What the target bin held after the move. */
  readonly destQtyAfter: number;
  /** Who moved it (the X-Actor of the request). */
  readonly actor: string | null;
  readonly reason: string;
  /** When, ISO 8601. */
  readonly at: string;
}

/** The movement history, append-only. Every method joins the ambient transaction. */
export interface MovementRepository {
  /** Records a movement, so it commits or rolls back with the stock it moved. */
  add(movement: Movement): Promise<void>;
  /** A product's newest `limit` movements, newest first (empty for an unknown product). */
  latest(productId: string, limit: number): Promise<Movement[]>;
}

/** The container token of the LowStockAlertRepository. */
export const LOW_STOCK_ALERT_REPOSITORY = Symbol.for('usecasecore.samples.LowStockAlertRepository');

/** A low-stock alert that was sent, as its job's `onSuccess` callback recorded it. */
export interface LowStockAlertRecord {
  readonly alertId: string;
  /** The LowStockAlert job that sent it (see `GET /jobs/:jobId`). */
  readonly jobId: string;
  /** The move that took the bin below the threshold. */
  readonly movementId: string;
  readonly productId: string;
  readonly binId: string;
  /** What the bin held after that move. */
  readonly qty: number;
  readonly threshold: number;
  /** When it was recorded, ISO 8601. */
  readonly at: string;
}

/** The alerts sent. Every method joins the ambient transaction. */
export interface LowStockAlertRepository {
  /** Records an alert; a job's alert is kept once, so recording it again changes nothing. */
  add(alert: LowStockAlertRecord): Promise<void>;
  /** A product's newest `limit` alerts, newest first. */
  latest(productId: string, limit: number): Promise<LowStockAlertRecord[]>;
}
