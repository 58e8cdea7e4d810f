// The sales feature: a projection fed by the broker (order.paid → sales per product), and a route to read it.
import express from 'express';
import { OrderPaid } from '../orders/events.js';
import { mediate } from '../http/reply.js';
import type { Feature } from '../shared/feature.js';
import { CountPaidOrderHandler, GetSalesHandler } from './handlers.js';
import { salesRules } from './policy.js';
import { GetSales } from './requests.js';

export * from './repository.js';
export * from './requests.js';
export { MemorySalesRepository } from './memory-repository.js';

/** Sales: `order.paid` events consumed from the queue `sales`, counted per product; `GET /sales/:productId`. */
export const sales: Feature = {
  path: '/sales',
  handlers: [CountPaidOrderHandler, GetSalesHandler],
  rules: salesRules,
  consumer: { queue: 'sales', events: [OrderPaid] },
  routes(mediator) {
    const router = express.Router();
    router.get(
      '/:productId',
      mediate(mediator, (req) => GetSales.from({ productId: req.params.productId })),
    );
    return router;
  },
};
