// Who may do what to an order (owner checks read the loaded order), and which lifecycle action each command is.
import type { Context } from '../../lib/core/index.js';
import { everyone, guard, rule, type PolicyRule, type TransitionGuard } from '../../middleware/index.js';
import { actorId, hasAnyRole } from '../shared/roles.js';
import type { ShipState } from './handlers.js';
import { orderLifecycle, type Order } from './order.js';
import { CancelOrder, FulfilOrder, GetOrder, PayOrder, PlaceOrder, ShipOrder } from './requests.js';

/**
 * True when the actor owns the loaded order, or there is no such order (so the handler answers not found
 * rather than the policy answering forbidden).
 */
async function ownsLoadedOrder(ctx: Context): Promise<boolean> {
  const order = (await ctx.load()) as Order | undefined;
  return order === undefined || order.owner === actorId(ctx);
}

/** Any actor places; only the owner pays; clerks and managers ship; the owner or a manager cancels; anyone reads. */
export const orderRules: readonly PolicyRule[] = [
  rule(PlaceOrder, (ctx) => actorId(ctx) !== undefined || { allow: false, reason: 'Placing an order needs an actor' }),
  rule(
    PayOrder,
    async (ctx) => (await ownsLoadedOrder(ctx)) || { allow: false, reason: "Only the order's owner may pay it" },
  ),
  rule(
    ShipOrder,
    (ctx) =>
      hasAnyRole(ctx, 'clerk', 'manager') || { allow: false, reason: 'Only clerks and managers may ship orders' },
  ),
  rule(
    CancelOrder,
    async (ctx) =>
      hasAnyRole(ctx, 'manager') ||
      (await ownsLoadedOrder(ctx)) || { allow: false, reason: "Only the order's owner or a manager may cancel it" },
  ),
  everyone(GetOrder),
  // The flow's own rule checks the role; its steps check the rest (pay: the owner), so together: an owner who is
  // also a clerk or a manager.
  rule(
    FulfilOrder,
    (ctx) =>
      hasAnyRole(ctx, 'clerk', 'manager') || { allow: false, reason: 'Only clerks and managers may fulfil orders' },
  ),
];

/** Pay, ship and cancel are checked against the order lifecycle before their handlers run. */
export const orderGuards: readonly TransitionGuard[] = [
  guard(PayOrder, orderLifecycle, 'pay', (order: Order | undefined) => order?.status),
  guard(ShipOrder, orderLifecycle, 'ship', (state: ShipState) => state?.order.status),
  guard(CancelOrder, orderLifecycle, 'cancel', (order: Order | undefined) => order?.status),
];
