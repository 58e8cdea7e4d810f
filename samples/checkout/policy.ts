// Who may check out (the order's owner, a placed order), who reads a checkout (its owner or a manager), and that its
// steps run only inside their process.
import { typeOf, type Context } from '../../lib/core/index.js';
import type { ProcessRecord } from '../../lib/processes/index.js';
import { guard, rule, type PolicyRule, type TransitionGuard } from '../../middleware/index.js';
import { orderLifecycle, type Order } from '../orders/order.js';
import { actorId, hasAnyRole } from '../shared/roles.js';
import { Checkout } from './process.js';
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
} from './requests.js';

/** A step, its compensation or the failure's cancellation: sent by the checkout process, never by a client. */
const inCheckout = (ctx: Context) =>
  ctx.meta.process?.type === Checkout.type || { allow: false, reason: `${ctx.type} runs only in a checkout` };

export const checkoutRules: readonly PolicyRule[] = [
  rule(StartCheckout, async (ctx) => {
    const order = (await ctx.load()) as Order | undefined;
    return (
      !order || order.owner === actorId(ctx) || { allow: false, reason: "Only the order's owner may check it out" }
    );
  }),
  // The process itself is started only by StartCheckout (nested in its transaction).
  rule(Checkout, (ctx) => ctx.parent?.type === typeOf(StartCheckout) || { allow: false, reason: 'Send StartCheckout' }),
  ...[ReserveStock, ReleaseStock, ChargeCard, RefundCharge, ShipReserved, CancelCheckout].map((type) =>
    rule(type, inCheckout),
  ),
  rule(
    ConfirmPayment,
    (ctx) => hasAnyRole(ctx, 'psp') || { allow: false, reason: 'Only the payment provider confirms' },
  ),
  rule(PaymentConfirmed, (ctx) => ctx.meta.message !== undefined || { allow: false, reason: 'A delivered event only' }),
  rule(GetCheckout, async (ctx) => {
    const process = (await ctx.load()) as ProcessRecord | undefined;
    if (!process || hasAnyRole(ctx, 'manager') || process.actor?.id === actorId(ctx)) return true;
    return { allow: false, reason: "Only the checkout's owner or a manager may read it" };
  }),
];

/** Checking out is an order transition: from placed only. */
export const checkoutGuards: readonly TransitionGuard[] = [
  guard(StartCheckout, orderLifecycle, 'checkout', (order: Order | undefined) => order?.status),
];
