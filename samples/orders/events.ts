// Facts the orders publish through the outbox after commit.
import * as v from 'valibot';
import { Event } from '../../lib/core/index.js';

const orderRef = v.object({ orderId: v.string() });
const orderLine = v.object({ orderId: v.string(), productId: v.string(), binId: v.string(), qty: v.number() });

/** An order was placed. */
export class OrderPlaced extends Event(v.object({ ...orderLine.entries, owner: v.string() })) {
  static readonly type = 'order.placed';
}

/** An order was paid. */
export class OrderPaid extends Event(orderRef) {
  static readonly type = 'order.paid';
}

/** An order was shipped and its quantity taken from its bin. */
export class OrderShipped extends Event(orderLine) {
  static readonly type = 'order.shipped';
}

/** An order was cancelled. */
export class OrderCancelled extends Event(orderRef) {
  static readonly type = 'order.cancelled';
}
