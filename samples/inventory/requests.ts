// The inventory requests: receive stock into a bin, move it between bins, read a product's bins.
import * as v from 'valibot';
import { Command, Query } from '../../lib/index.js';
import { entityId, quantity } from '../shared/schemas.js';

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
