// The checkout handlers: start it (the order then belongs to the process), its three steps and what undoes them,
// the provider's confirmation, and the process as its owner sees it.
import { inject, injectable } from 'inversify';
import { fail, failure, handles, notFound, ok, type Context, type Handler } from '../../lib/core/index.js';
import type { ProcessRecord } from '../../lib/processes/index.js';
import { insufficientStock, INVENTORY_REPOSITORY, type InventoryRepository } from '../inventory/repository.js';
import { OrderCancelled, OrderPaid, OrderShipped } from '../orders/events.js';
import type { Order } from '../orders/order.js';
import { ORDER_REPOSITORY, type OrderRepository } from '../orders/repository.js';
import { Checkout } from './process.js';
import { PSP_CLIENT, type PspClient } from './psp.js';
import { RESERVATION_REPOSITORY, type ReservationRepository } from './repository.js';
import {
  CancelCheckout,
  ChargeCard,
  ConfirmPayment,
  GetCheckout,
  PaymentConfirmed,
  RefundCharge,
  ReleaseStock,
  ReserveStock,
  ShipReserved,
  StartCheckout,
  type CheckoutView,
} from './requests.js';

/** What a unit costs, in cents (the sample has no price list). */
export const UNIT_PRICE = 1_000;

/** The order, locked; the policy judges its owner, the transition guard its status (placed). */
@handles(StartCheckout)
@injectable()
export class StartCheckoutHandler implements Handler<StartCheckout, Order | undefined> {
  constructor(@inject(ORDER_REPOSITORY) private readonly orders: OrderRepository) {}
  load(cmd: StartCheckout) {
    return this.orders.lock(cmd.orderId);
  }
  async handle(cmd: StartCheckout, ctx: Context<StartCheckout, Order | undefined>) {
    const order = ctx.state;
    if (!order) return notFound(`No order ${cmd.orderId}`);
    await this.orders.save({ ...order, status: 'checking_out' });
    return ctx.send(new Checkout({ orderId: cmd.orderId, card: cmd.card }));
  }
}

/** Step 1: takes the order's quantity out of its bin into a reservation. */
@handles(ReserveStock)
@injectable()
export class ReserveStockHandler implements Handler<ReserveStock> {
  constructor(
    @inject(ORDER_REPOSITORY) private readonly orders: OrderRepository,
    @inject(INVENTORY_REPOSITORY) private readonly inventory: InventoryRepository,
    @inject(RESERVATION_REPOSITORY) private readonly reservations: ReservationRepository,
  ) {}
  async handle(cmd: ReserveStock) {
    const order = await this.orders.lock(cmd.orderId);
    if (!order) return notFound(`No order ${cmd.orderId}`);
    const available = (await this.inventory.lockBins(order.productId, [order.binId])).get(order.binId) ?? 0;
    const short = insufficientStock(available, order.qty);
    if (short) return short;
    await this.inventory.setQuantity(order.productId, order.binId, available - order.qty);
    await this.reservations.add({
      orderId: order.orderId,
      productId: order.productId,
      binId: order.binId,
      qty: order.qty,
    });
    return ok({ orderId: order.orderId, card: cmd.card, amount: order.qty * UNIT_PRICE });
  }
}

/** Undoes step 1: the reservation goes back to its bin (nothing when there is none left). */
@handles(ReleaseStock)
@injectable()
export class ReleaseStockHandler implements Handler<ReleaseStock> {
  constructor(
    @inject(INVENTORY_REPOSITORY) private readonly inventory: InventoryRepository,
    @inject(RESERVATION_REPOSITORY) private readonly reservations: ReservationRepository,
  ) {}
  async handle(cmd: ReleaseStock) {
    const reservation = await this.reservations.take(cmd.orderId);
    if (reservation) {
      const { productId, binId, qty } = reservation;
      const held = (await this.inventory.lockBins(productId, [binId])).get(binId) ?? 0;
      await this.inventory.setQuantity(productId, binId, held + qty);
    }
    return ok(undefined);
  }
}

/** Step 2: the card charged at the provider, under the step's key (a retry is the same charge there). */
@handles(ChargeCard)
@injectable()
export class ChargeCardHandler implements Handler<ChargeCard> {
  constructor(@inject(PSP_CLIENT) private readonly psp: PspClient) {}
  async handle(cmd: ChargeCard, ctx: Context<ChargeCard>) {
    const key = ctx.meta.process?.key ?? ctx.meta.idempotencyKey ?? ctx.meta.requestId;
    const charged = await this.psp.charge({ orderId: cmd.orderId, card: cmd.card, amount: cmd.amount }, key);
    if (charged.outcome === 'declined') return fail('card_declined', undefined, 'The card was declined');
    if (charged.outcome === 'unavailable')
      return failure({ kind: 'unavailable', message: 'The payment provider did not answer; trying again' });
    return ok({ orderId: cmd.orderId, chargeId: charged.chargeId, status: charged.status });
  }
}

/** Undoes step 2: the charge refunded (a provider that does not answer is asked again: the job retries). */
@handles(RefundCharge)
@injectable()
export class RefundChargeHandler implements Handler<RefundCharge> {
  constructor(@inject(PSP_CLIENT) private readonly psp: PspClient) {}
  async handle(cmd: RefundCharge, ctx: Context<RefundCharge>) {
    const key = ctx.meta.process?.key ?? ctx.meta.requestId;
    if (await this.psp.refund(cmd.chargeId, key)) return ok(undefined);
    return failure({ kind: 'unavailable', message: 'The payment provider did not answer the refund; trying again' });
  }
}

/** Step 3: the order shipped (and paid), its reservation consumed. */
@handles(ShipReserved)
@injectable()
export class ShipReservedHandler implements Handler<ShipReserved> {
  constructor(
    @inject(ORDER_REPOSITORY) private readonly orders: OrderRepository,
    @inject(RESERVATION_REPOSITORY) private readonly reservations: ReservationRepository,
  ) {}
  async handle(cmd: ShipReserved, ctx: Context<ShipReserved>) {
    const order = await this.orders.lock(cmd.orderId);
    if (!order) return notFound(`No order ${cmd.orderId}`);
    await this.reservations.take(cmd.orderId);
    await this.orders.save({ ...order, status: 'shipped' });
    const { orderId, productId, binId, qty } = order;
    ctx.publish(new OrderPaid({ orderId }), { aggregateId: orderId });
    ctx.publish(new OrderShipped({ orderId, productId, binId, qty }), { aggregateId: orderId });
    return ok({ orderId, status: 'shipped' as const });
  }
}

/** A checkout that failed or was undone: its order is cancelled. */
@handles(CancelCheckout)
@injectable()
export class CancelCheckoutHandler implements Handler<CancelCheckout> {
  constructor(@inject(ORDER_REPOSITORY) private readonly orders: OrderRepository) {}
  async handle(cmd: CancelCheckout, ctx: Context<CancelCheckout>) {
    const order = await this.orders.lock(cmd.input.orderId);
    if (order && (order.status === 'checking_out' || order.status === 'placed')) {
      await this.orders.save({ ...order, status: 'cancelled' });
      ctx.publish(new OrderCancelled({ orderId: order.orderId }), { aggregateId: order.orderId });
    }
    return ok(undefined);
  }
}

/** The provider's webhook: its word, published for the checkout that waits for it. */
@handles(ConfirmPayment)
@injectable()
export class ConfirmPaymentHandler implements Handler<ConfirmPayment> {
  handle(cmd: ConfirmPayment, ctx: Context<ConfirmPayment>) {
    ctx.publish(new PaymentConfirmed({ chargeId: cmd.chargeId, status: cmd.status }));
    return ok(undefined);
  }
}

/** A checkout of the sender's tenant: its three steps (the wait for a pending charge shown as ChargeCard's). */
@handles(GetCheckout)
@injectable()
export class GetCheckoutHandler implements Handler<GetCheckout, ProcessRecord | undefined> {
  async load(query: GetCheckout, ctx: Context<GetCheckout, ProcessRecord | undefined>) {
    const process = await ctx.ports.processes?.get(query.processId);
    return process?.tenant === ctx.meta.tenant && process.type === Checkout.type ? process : undefined;
  }
  handle(query: GetCheckout, ctx: Context<GetCheckout, ProcessRecord | undefined>) {
    return ctx.state ? ok(checkoutView(ctx.state)) : notFound(`No checkout ${query.processId}`);
  }
}

/** The checkout as its owner sees it: ReserveStock, ChargeCard (with its wait), ShipOrder. */
export function checkoutView(process: ProcessRecord): CheckoutView {
  const [reserve, charge, wait, ship] = process.steps;
  const waiting = wait && (wait.state === 'waiting' || wait.state === 'failed');
  const steps = [reserve!, waiting ? { ...charge!, state: wait.state } : charge!, ship!];
  return {
    processId: process.processId,
    type: process.type,
    state: process.state,
    steps: steps.map(({ name, state, attempts }) => ({ name, state, attempts })),
    ...(process.failure ? { failure: process.failure } : {}),
  };
}
