// The inventory store, as the handlers see it (memory today, Postgres later).
import { fail, type Fail } from '../../lib/index.js';

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
