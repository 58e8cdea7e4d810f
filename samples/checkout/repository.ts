// The checkout's stores: the stock each order holds in reservation, and the stand-in payment provider's charges.

/** The container token of the ReservationRepository. */
export const RESERVATION_REPOSITORY = Symbol.for('usecasecore.samples.ReservationRepository');

/** Stock an order took out of its bin, until it ships or goes back. */
export interface Reservation {
  readonly orderId: string;
  readonly productId: string;
  readonly binId: string;
  readonly qty: number;
}

/** Reservations by order. Every method joins the ambient transaction. */
export interface ReservationRepository {
  add(reservation: Reservation): Promise<void>;
  /** Removes and returns the order's reservation (locked until commit where the store can), or undefined. */
  take(orderId: string): Promise<Reservation | undefined>;
}

/** The container token of the ChargeStore (the stand-in payment provider's records). */
export const CHARGE_STORE = Symbol.for('usecasecore.samples.ChargeStore');

/** What the stand-in provider answered, kept under the caller's idempotency key. */
export type ChargeStatus = 'succeeded' | 'pending' | 'declined' | 'failing' | 'refunded';

/** One charge at the stand-in provider. */
export interface Charge {
  readonly chargeId: string;
  /** The caller's Idempotency-Key: the same key is the same charge. */
  readonly key: string;
  readonly orderId: string;
  readonly amount: number;
  /** The last four digits only: the provider keeps no card number. */
  readonly last4: string;
  readonly status: ChargeStatus;
  /** Requests made under the key (the 503 card fails the first two). */
  readonly attempts: number;
  readonly createdAt: string;
}

/** The stand-in provider's records: it is another system, so it writes on its own, outside the app's transactions. */
export interface ChargeStore {
  /** The charge under `key`, with one more attempt counted; `create` makes it when the key is new. */
  attempt(key: string, create: () => Charge): Promise<Charge>;
  /** Changes a charge's status (and returns it), or undefined for an unknown charge. */
  setStatus(chargeId: string, status: ChargeStatus): Promise<Charge | undefined>;
  byOrder(orderId: string): Promise<Charge[]>;
}
