// Who may do what to the sales projection.
import { everyone, rule, type PolicyRule } from '../../middleware/index.js';
import { OrderPaid } from '../orders/events.js';
import { GetSales } from './requests.js';

/** Only a delivered message counts a paid order (never a direct send); anyone reads the counts. */
export const salesRules: readonly PolicyRule[] = [
  rule(
    OrderPaid,
    (ctx) =>
      ctx.meta.message !== undefined || {
        allow: false,
        reason: 'order.paid is counted only when the broker delivers it',
      },
  ),
  everyone(GetSales),
];
