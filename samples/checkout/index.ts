// The checkout feature: an order checked out as a process (reserve, charge at the payment provider, ship), the
// provider's webhook, and a stand-in provider served under /psp.
import { processes } from '../../lib/processes/index.js';
import type { Feature } from '../shared/feature.js';
import {
  CancelCheckoutHandler,
  ChargeCardHandler,
  ConfirmPaymentHandler,
  GetCheckoutHandler,
  RefundChargeHandler,
  ReleaseStockHandler,
  ReserveStockHandler,
  ShipReservedHandler,
  StartCheckoutHandler,
} from './handlers.js';
import { checkoutGuards, checkoutRules } from './policy.js';
import { Checkout } from './process.js';

export * from './process.js';
export * from './psp.js';
export * from './repository.js';
export * from './requests.js';
export { MemoryChargeStore, MemoryReservationRepository } from './memory-repository.js';
export { SqlChargeStore, SqlReservationRepository, createCheckoutTables } from './sql-repository.js';
export { checkoutView } from './handlers.js';

/** The process runtime of the checkout: its step runner and wait subscriber, their rules and job types. */
export const checkoutProcess = processes([Checkout]);

/** Checkout: started by the order's owner, run by workers (its step jobs) and the subscriber of the provider's word. */
export const checkout: Feature = {
  handlers: [
    StartCheckoutHandler,
    ReserveStockHandler,
    ReleaseStockHandler,
    ChargeCardHandler,
    RefundChargeHandler,
    ShipReservedHandler,
    CancelCheckoutHandler,
    ConfirmPaymentHandler,
    GetCheckoutHandler,
    ...checkoutProcess.handlers,
  ],
  rules: [...checkoutRules, ...checkoutProcess.rules],
  guards: checkoutGuards,
  jobs: checkoutProcess.jobs,
  subscribes: true,
};
