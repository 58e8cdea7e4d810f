// The order handlers: load the order (and, to ship, its bin), then apply the lifecycle action and stage its event.
import { randomUUID } from 'node:crypto';
import { inject, injectable } from 'inversify';
import { handles, notFound, ok, type AnyRequest, type Context, type Handler, type Ok } from '../../lib/core/index.js';
import { insufficientStock, INVENTORY_REPOSITORY, type InventoryRepository } from '../inventory/repository.js';
import { actorId } from '../shared/roles.js';
import { OrderCancelled, OrderPaid, OrderPlaced, OrderShipped } from './events.js';
import { orderLifecycle, type Order, type OrderAction } from './order.js';
import { ORDER_REPOSITORY, type OrderRepository } from './repository.js';
import { CancelOrder, GetOrder, PayOrder, PlaceOrder, ShipOrder, type OrderStatusView } from './requests.js';

/** What shipping decides on: the order and the quantity in its bin (undefined when there is no such order). */
export type ShipState = { readonly order: Order; readonly available: number } | undefined;

/** Creates an order owned by the actor, with a fresh id. */
@handles(PlaceOrder)
@injectable()
export class PlaceOrderHandler implements Handler<PlaceOrder> {
  constructor(@inject(ORDER_REPOSITORY) private readonly orders: OrderRepository) {}

  async handle(cmd: PlaceOrder, ctx: Context<PlaceOrder>) {
    const order: Order = {
      orderId: randomUUID(),
      status: 'placed',
      productId: cmd.productId,
      binId: cmd.binId,
      qty: cmd.qty,
      owner: actorId(ctx)!, // the PlaceOrder policy rule denies a send without an actor
    };
    await this.orders.save(order);
    const { orderId, productId, binId, qty, owner } = order;
    ctx.publish(new OrderPlaced({ orderId, productId, binId, qty, owner }), { aggregateId: orderId });
    return ok({ orderId, status: order.status });
  }
}

/** Marks a placed order paid. */
@handles(PayOrder)
@injectable()
export class PayOrderHandler implements Handler<PayOrder, Order | undefined> {
  constructor(@inject(ORDER_REPOSITORY) private readonly orders: OrderRepository) {}

  load(cmd: PayOrder) {
    return this.orders.lock(cmd.orderId);
  }

  async handle(cmd: PayOrder, ctx: Context<PayOrder, Order | undefined>) {
    const order = ctx.state;
    if (!order) return noOrder(cmd.orderId);
    return advance(this.orders, ctx, order, 'pay', new OrderPaid({ orderId: order.orderId }));
  }
}

/** Takes a paid order's quantity from its bin and marks it shipped, or fails with `insufficient_stock`. */
@handles(ShipOrder)
@injectable()
export class ShipOrderHandler implements Handler<ShipOrder, ShipState> {
  constructor(
    @inject(ORDER_REPOSITORY) private readonly orders: OrderRepository,
    @inject(INVENTORY_REPOSITORY) private readonly inventory: InventoryRepository,
  ) {}

  async load(cmd: ShipOrder): Promise<ShipState> {
    const order = await this.orders.lock(cmd.orderId);
    if (!order) return undefined;
    const bins = await this.inventory.lockBins(order.productId, [order.binId]);
    return { order, available: bins.get(order.binId) ?? 0 };
  }

  async handle(cmd: ShipOrder, ctx: Context<ShipOrder, ShipState>) {
    if (!ctx.state) return noOrder(cmd.orderId);
    const { order, available } = ctx.state;
    const short = insufficientStock(available, order.qty);
    if (short) return short;
    await this.inventory.setQuantity(order.productId, order.binId, available - order.qty);
    const { orderId, productId, binId, qty } = order;
    return advance(this.orders, ctx, order, 'ship', new OrderShipped({ orderId, productId, binId, qty }));
  }
}

/** Marks a placed or paid order cancelled. */
@handles(CancelOrder)
@injectable()
export class CancelOrderHandler implements Handler<CancelOrder, Order | undefined> {
  constructor(@inject(ORDER_REPOSITORY) private readonly orders: OrderRepository) {}

  load(cmd: CancelOrder) {
    return this.orders.lock(cmd.orderId);
  }

  async handle(cmd: CancelOrder, ctx: Context<CancelOrder, Order | undefined>) {
    const order = ctx.state;
    if (!order) return noOrder(cmd.orderId);
    return advance(this.orders, ctx, order, 'cancel', new OrderCancelled({ orderId: order.orderId }));
  }
}

/** Reads one order. */
@handles(GetOrder)
@injectable()
export class GetOrderHandler implements Handler<GetOrder> {
  constructor(@inject(ORDER_REPOSITORY) private readonly orders: OrderRepository) {}

  async handle(query: GetOrder) {
    const order = await this.orders.find(query.orderId);
    return order ? ok({ ...order }) : noOrder(query.orderId);
  }
}

/** Saves the order in the state `action` leads to (transition() already checked it may) and stages `event`. */
async function advance(
  orders: OrderRepository,
  ctx: Context,
  order: Order,
  action: OrderAction,
  event: AnyRequest,
): Promise<Ok<OrderStatusView>> {
  const status = orderLifecycle.actions[action].to;
  await orders.save({ ...order, status });
  ctx.publish(event, { aggregateId: order.orderId });
  return ok({ orderId: order.orderId, status });
}

function noOrder(orderId: string) {
  return notFound(`No order ${orderId}`);
}
