// The sales feature: a projection fed by the broker (order.paid → sales per product), read at GET /sales/:productId.
import { OrderPaid } from '../orders/events.js';
import type { Feature } from '../shared/feature.js';
import { CountPaidOrderHandler, GetSalesHandler } from './handlers.js';
import { salesRules } from './policy.js';

export * from './repository.js';
export * from './requests.js';
export { MemorySalesRepository } from './memory-repository.js';

/** Sales: `order.paid` events consumed from the queue `sales`, counted per product. */
export const sales: Feature = {
  handlers: [CountPaidOrderHandler, GetSalesHandler],
  rules: salesRules,
  consumer: { queue: 'sales', events: [OrderPaid] },
};
