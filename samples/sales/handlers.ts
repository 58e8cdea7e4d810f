// The sales handlers: count each paid order once (the inbox dedupes redeliveries), read the counts.
import { inject, injectable } from 'inversify';
import { handles, notFound, ok, type Handler } from '../../lib/core/index.js';
import { OrderPaid } from '../orders/events.js';
import { ORDER_REPOSITORY, type OrderRepository } from '../orders/repository.js';
import { SALES_REPOSITORY, type SalesRepository } from './repository.js';
import { GetSales } from './requests.js';

/**
 * Consumes `order.paid`: adds the order's quantity to its product's sales. It runs once per message: `inbox()`
 * records the message id in this transaction, so a redelivery (the broker hands back what a stopped or killed
 * consumer left unacked) changes nothing.
 */
@handles(OrderPaid)
@injectable()
export class CountPaidOrderHandler implements Handler<OrderPaid> {
  constructor(
    @inject(ORDER_REPOSITORY) private readonly orders: OrderRepository,
    @inject(SALES_REPOSITORY) private readonly sales: SalesRepository,
  ) {}

  async handle(event: OrderPaid) {
    // The event names the order only; its line is in the order, committed before the event was published.
    const order = await this.orders.find(event.orderId);
    if (!order) return notFound(`No order ${event.orderId}`);
    await this.sales.addPaidOrder(order.productId, order.qty);
    return ok(undefined);
  }
}

/** Reads a product's sales. */
@handles(GetSales)
@injectable()
export class GetSalesHandler implements Handler<GetSales> {
  constructor(@inject(SALES_REPOSITORY) private readonly sales: SalesRepository) {}

  async handle(query: GetSales) {
    return ok(await this.sales.of(query.productId));
  }
}
