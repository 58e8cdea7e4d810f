// The inventory requests: receive stock into a bin, move it between bins, read a product's bins and its movement
// history; the low-stock alert job, its callback, and the alerts it recorded.
import * as v from 'valibot';
import { Command, Query } from '../../lib/core/index.js';
import { entityId, listLimit, quantity } from '../shared/schemas.js';
import type { LowStockAlertRecord, Movement } from './repository.js';

/** Puts `qty` units of a product into a bin (managers only). */
export class ReceiveStock extends Command(v.object({ productId: entityId, binId: entityId, qty: quantity }))<{
  productId: string;
  binId: string;
  qtyAfter: number;
}> {}

/** Moves `qty` units of a product from one bin to another (clerks and managers). */
export class MoveInventory extends Command(
  v.pipe(
    v.object({
      productId: entityId,
      fromBinId: entityId,
      toBinId: entityId,
      qty: quantity,
      reason: v.pipe(
        v.string(),
        v.trim(),
        v.minLength(1, 'Give a reason for the move'),
        v.maxLength(200, 'Must be at most 200 characters'),
      ),
    }),
    v.forward(
      v.partialCheck(
        [['fromBinId'], ['toBinId']],
        (move) => move.fromBinId !== move.toBinId,
        'Must differ from fromBinId',
      ),
      ['toBinId'],
    ),
  ),
)<{ sourceQtyAfter: number; destQtyAfter: number }, 'insufficient_stock'> {}

/** The quantity in every bin of a product (public). */
export class GetInventory extends Query(v.object({ productId: entityId }))<{
  productId: string;
  bins: Record<string, number>;
}> {}

/** How many movements or alerts a list returns without `?limit`. */
export const DEFAULT_HISTORY_LIMIT = 50;

/** A product's newest movements, newest first (public, as the audit log is). `limit`: 1–500, default 50. */
export class GetMovements extends Query(v.object({ productId: entityId, limit: listLimit }))<{
  productId: string;
  movements: Movement[];
}> {}

/** What a LowStockAlert job carries: the bin, what it held after the move, the threshold, and the move. */
const lowStock = v.object({
  productId: entityId,
  binId: entityId,
  qty: v.pipe(v.number(), v.integer(), v.minValue(0)),
  threshold: v.pipe(v.number(), v.integer(), v.minValue(1)),
  movementId: v.pipe(v.string(), v.uuid()),
});

/**
 * A job, enqueued by a move that took a bin below the threshold: sends the alert (a worker runs it after the move
 * committed; never sent directly).
 */
export class LowStockAlert extends Command(lowStock)<{ alertId: string }> {}

/**
 * LowStockAlert's `onSuccess` callback, a job of its own (the shape is `JobSettled`): records the alert it sent.
 */
export class RecordLowStockAlert extends Command(
  v.object({
    jobId: v.string(),
    type: v.string(),
    payload: lowStock,
    attempts: v.number(),
    result: v.object({ alertId: v.pipe(v.string(), v.uuid()) }),
  }),
)<LowStockAlertRecord> {}

/** A product's newest low-stock alerts, newest first (public). `limit`: 1–500, default 50. */
export class GetLowStockAlerts extends Query(v.object({ productId: entityId, limit: listLimit }))<{
  productId: string;
  alerts: LowStockAlertRecord[];
}> {}
