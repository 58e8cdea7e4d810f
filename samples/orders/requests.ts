// The order requests: place one, move it through its lifecycle, read it.
import * as v from 'valibot';
import { Command, flow, Query } from '../../lib/core/index.js';
import { entityId, orderId, quantity } from '../shared/schemas.js';
import type { Order, OrderStatus } from './order.js';

/** What every order command answers. */
export interface OrderStatusView {
  readonly orderId: string;
  readonly status: OrderStatus;
}

const byOrderId = v.object({ orderId });

/** Places an order for `qty` units from a bin; the actor owns it. */
export class PlaceOrder extends Command(
  v.object({ productId: entityId, binId: entityId, qty: quantity }),
)<OrderStatusView> {}

/** Pays a placed order (its owner only). */
export class PayOrder extends Command(byOrderId)<OrderStatusView> {}

/** Ships a paid order, taking its quantity from its bin (clerks and managers). */
export class ShipOrder extends Command(byOrderId)<OrderStatusView, 'insufficient_stock'> {}

/** Cancels a placed or paid order (its owner or a manager). */
export class CancelOrder extends Command(byOrderId)<OrderStatusView> {}

/**
 * Pays and ships an order in one transaction (a flow): answers like ship, or with the first failure, which undoes
 * the payment. Its owner, when the owner is also a clerk or a manager (pay checks the owner, ship the role).
 */
export const FulfilOrder = flow('FulfilOrder', [PayOrder, ShipOrder]);

/** Reads an order (public). */
export class GetOrder extends Query(byOrderId)<Order> {}
