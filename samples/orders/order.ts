// The order and its lifecycle: placed → paid → shipped, or placed → checking out → shipped (the checkout process),
// and cancelled until shipped.
import { lifecycle } from '../../lib/core/index.js';

/** Where an order is in its lifecycle. */
export type OrderStatus = 'placed' | 'checking_out' | 'paid' | 'shipped' | 'cancelled';

/** What can happen to a placed order. */
export type OrderAction = 'pay' | 'ship' | 'cancel' | 'checkout' | 'deliver';

/** An order for `qty` units of a product, to be shipped from one bin. */
export interface Order {
  readonly orderId: string;
  readonly status: OrderStatus;
  readonly productId: string;
  readonly binId: string;
  readonly qty: number;
  /** The actor who placed it. */
  readonly owner: string;
}

/** The order lifecycle, checked by `transition()` before any order handler runs. */
export const orderLifecycle = lifecycle<OrderStatus, OrderAction>({
  pay: { from: ['placed'], to: 'paid' },
  ship: { from: ['paid'], to: 'shipped' },
  cancel: { from: ['placed', 'paid'], to: 'cancelled' },
  /** The checkout process starts: the order is its until it ships or is cancelled. */
  checkout: { from: ['placed'], to: 'checking_out' },
  /** The checkout process ships it from its reservation. */
  deliver: { from: ['checking_out'], to: 'shipped' },
});
