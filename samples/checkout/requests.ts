// The checkout requests: start one (the order's owner), its steps (sent only by the process), the provider's
// confirmation, and the process as the owner sees it.
import * as v from 'valibot';
import { Command, Event, Query } from '../../lib/core/index.js';
import type { ProcessFailure, ProcessStarted, ProcessState, StepState } from '../../lib/processes/index.js';
import { orderId } from '../shared/schemas.js';

const card = v.pipe(v.string(), v.regex(/^\d{12,19}$/, 'a card number is 12 to 19 digits'));
const chargeId = v.pipe(v.string(), v.maxLength(100));

/** Checks an order out as a process (reserve, charge, ship); answers its id at once (202). The owner only. */
export class StartCheckout extends Command(v.object({ orderId, card }))<ProcessStarted> {
  static readonly sensitive = ['card'];
}

/** Step 1: the order's quantity leaves its bin into a reservation; its result is what the charge needs. */
export class ReserveStock extends Command(v.object({ orderId, card }))<
  { readonly orderId: string; readonly card: string; readonly amount: number },
  'insufficient_stock'
> {
  static readonly sensitive = ['card'];
}

/** Undoes step 1: the reservation goes back to its bin. */
export class ReleaseStock extends Command(v.object({ orderId }))<void> {}

/** Step 2: charges the card at the payment provider, over HTTP, under the step's idempotency key. */
export class ChargeCard extends Command(v.object({ orderId, card, amount: v.pipe(v.number(), v.integer()) }))<
  { readonly orderId: string; readonly chargeId: string; readonly status: 'succeeded' | 'pending' },
  'card_declined'
> {
  static readonly sensitive = ['card'];
}

/** Undoes step 2: refunds the charge. */
export class RefundCharge extends Command(v.object({ orderId, chargeId }))<void> {}

/** Step 3 (named ShipOrder): the order shipped, its reservation consumed. */
export class ShipReserved extends Command(v.object({ orderId, chargeId }))<{
  readonly orderId: string;
  readonly status: 'shipped';
}> {}

/** Sent once when a checkout fails or is undone: the order is cancelled. */
export class CancelCheckout extends Command(
  v.object({ processId: v.string(), input: v.object({ orderId }), failure: v.optional(v.unknown()) }),
)<void> {}

/** The provider's word on a pending charge: a checkout waiting for it goes on (or is undone). */
export class PaymentConfirmed extends Event(v.object({ chargeId, status: v.picklist(['succeeded', 'failed']) })) {
  static readonly type = 'payment.confirmed';
}

/** The provider's webhook, as a command: it publishes PaymentConfirmed. */
export class ConfirmPayment extends Command(
  v.object({ chargeId, status: v.picklist(['succeeded', 'failed']) }),
)<void> {}

/** A checkout as its owner sees it. */
export interface CheckoutView {
  readonly processId: string;
  readonly type: string;
  readonly state: ProcessState;
  readonly steps: ReadonlyArray<{ readonly name: string; readonly state: StepState; readonly attempts: number }>;
  /** Why it failed or was undone (`card_declined`, `insufficient_stock`); absent while it runs or once completed. */
  readonly failure?: ProcessFailure;
}

/** Reads a checkout process (its owner, or a manager). */
export class GetCheckout extends Query(v.object({ processId: v.pipe(v.string(), v.maxLength(100)) }))<CheckoutView> {}
