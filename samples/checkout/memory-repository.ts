// The checkout's stores in memory: reservations undone with the transaction; charges written at once (the provider
// is another system).
import { inject, injectable } from 'inversify';
import { MemoryUnitOfWork, TransactionalMap } from '../../adapters/memory/index.js';
import type { Charge, ChargeStatus, ChargeStore, Reservation, ReservationRepository } from './repository.js';

@injectable()
export class MemoryReservationRepository implements ReservationRepository {
  readonly #reservations: TransactionalMap<string, Reservation>;
  constructor(@inject(MemoryUnitOfWork) uow: MemoryUnitOfWork) {
    this.#reservations = new TransactionalMap(uow);
  }
  async add(reservation: Reservation): Promise<void> {
    this.#reservations.set(reservation.orderId, reservation);
  }
  async take(orderId: string): Promise<Reservation | undefined> {
    const reservation = this.#reservations.get(orderId);
    this.#reservations.delete(orderId);
    return reservation;
  }
}

@injectable()
export class MemoryChargeStore implements ChargeStore {
  readonly #byKey = new Map<string, Charge>();
  async attempt(key: string, create: () => Charge): Promise<Charge> {
    const found = this.#byKey.get(key);
    const charge = found ? { ...found, attempts: found.attempts + 1 } : create();
    this.#byKey.set(key, charge);
    return charge;
  }
  async setStatus(chargeId: string, status: ChargeStatus): Promise<Charge | undefined> {
    for (const [key, charge] of this.#byKey)
      if (charge.chargeId === chargeId) {
        const changed = { ...charge, status };
        this.#byKey.set(key, changed);
        return changed;
      }
    return undefined;
  }
  async byOrder(orderId: string): Promise<Charge[]> {
    return [...this.#byKey.values()].filter((c) => c.orderId === orderId);
  }
}
