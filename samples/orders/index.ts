// The orders feature: an order lifecycle (place → pay → ship, cancel) with owner- and role-based policy.
import type { Feature } from '../shared/feature.js';
import {
  CancelOrderHandler,
  GetOrderHandler,
  PayOrderHandler,
  PlaceOrderHandler,
  ShipOrderHandler,
} from './handlers.js';
import { orderGuards, orderRules } from './policy.js';
import { FulfilOrder } from './requests.js';

export * from './events.js';
export * from './order.js';
export * from './repository.js';
export * from './requests.js';
export { MemoryOrderRepository } from './memory-repository.js';

/** Orders: placed by anyone, paid by the owner, shipped from stock by clerks and managers, cancelled until shipped. */
export const orders: Feature = {
  handlers: [
    PlaceOrderHandler,
    PayOrderHandler,
    ShipOrderHandler,
    CancelOrderHandler,
    GetOrderHandler,
    FulfilOrder.handler,
  ],
  rules: orderRules,
  guards: orderGuards,
};
