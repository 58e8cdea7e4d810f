// Facts the inventory publishes through the outbox after commit.
import * as v from 'valibot';
import { Event } from '../../lib/core/index.js';

/** Stock was put into a bin. */
export class StockReceived extends Event(
  v.object({ productId: v.string(), binId: v.string(), qty: v.number(), qtyAfter: v.number() }),
) {
  static readonly type = 'stock.received';
}

/** Stock was moved from one bin to another. */
export class InventoryMoved extends Event(
  v.object({
    productId: v.string(),
    fromBinId: v.string(),
    toBinId: v.string(),
    qty: v.number(),
    reason: v.string(),
    sourceQtyAfter: v.number(),
    destQtyAfter: v.number(),
  }),
) {
  static readonly type = 'inventory.moved';
}

/**
 * A bin fell below the low-stock threshold and the alert went out (published by the LowStockAlert job): what a
 * notifier — mail, chat, paging — would subscribe to.
 */
export class StockRanLow extends Event(
  v.object({
    alertId: v.string(),
    productId: v.string(),
    binId: v.string(),
    qty: v.number(),
    threshold: v.number(),
    movementId: v.string(),
  }),
) {
  static readonly type = 'inventory.low_stock';
}
