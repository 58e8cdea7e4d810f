// The checkout process: reserve the stock, charge the card (waiting for the provider's word when it answers
// pending), ship; a declined card or a wait that runs out puts the stock back, and the order is cancelled.
import { process, step, waitFor } from '../../lib/processes/index.js';
import {
  CancelCheckout,
  ChargeCard,
  PaymentConfirmed,
  RefundCharge,
  ReleaseStock,
  ReserveStock,
  ShipReserved,
} from './requests.js';

/** How long a checkout waits for the provider to confirm a pending charge. */
export const CONFIRMATION_TIMEOUT_MS = 30_000;

/**
 * The checkout, started by StartCheckout (its handler sends `new Checkout({ orderId, card })`). Its input is its first
 * step's, ReserveStock's. Steps are numbered from 0, the wait included: 0 ReserveStock, 1 ChargeCard, 2 the wait,
 * 3 ShipOrder.
 */
export const Checkout = process(
  'Checkout',
  [
    step(ReserveStock, { compensate: ReleaseStock }),
    step(ChargeCard, { compensate: RefundCharge }),
    waitFor(PaymentConfirmed, {
      key: (charge: { orderId: string; chargeId: string; status: string }) =>
        charge.status === 'pending' ? charge.chargeId : undefined,
      match: (event) => event.chargeId,
      accept: (event) => event.status === 'succeeded' || `the provider reported the payment ${event.status}`,
      timeoutMs: CONFIRMATION_TIMEOUT_MS,
    }),
    step(ShipReserved, { name: 'ShipOrder' }),
  ],
  { onFailure: CancelCheckout },
);
