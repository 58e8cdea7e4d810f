// The inventory's repositories in memory: TransactionalMaps, so a rolled-back send leaves no change behind.
import { inject, injectable } from 'inversify';
import { MemoryUnitOfWork, TransactionalMap } from '../../adapters/memory/index.js';
import type {
  InventoryRepository,
  LowStockAlertRecord,
  LowStockAlertRepository,
  Movement,
  MovementRepository,
} from './repository.js';

/** Keeps each product's bins as an immutable map, replaced on every write (so undo restores the old one). */
@injectable()
export class MemoryInventoryRepository implements InventoryRepository {
  readonly #products: TransactionalMap<string, ReadonlyMap<string, number>>;

  constructor(@inject(MemoryUnitOfWork) uow: MemoryUnitOfWork) {
    this.#products = new TransactionalMap(uow);
  }

  async lockBins(productId: string, binIds: readonly string[]): Promise<ReadonlyMap<string, number>> {
    const bins = this.#products.get(productId);
    return new Map(binIds.map((binId) => [binId, bins?.get(binId) ?? 0]));
  }

  async setQuantity(productId: string, binId: string, qty: number): Promise<void> {
    if (qty < 0) throw new RangeError(`Bin ${binId} of ${productId} cannot hold ${qty}`);
    this.#products.set(productId, new Map(this.#products.get(productId)).set(binId, qty));
  }

  async bins(productId: string): Promise<ReadonlyMap<string, number>> {
    return new Map(this.#products.get(productId));
  }
}

/** Keeps each product's movements as an immutable list, oldest first, replaced on every write. */
@injectable()
export class MemoryMovementRepository implements MovementRepository {
  readonly #products: TransactionalMap<string, readonly Movement[]>;

  constructor(@inject(MemoryUnitOfWork) uow: MemoryUnitOfWork) {
    this.#products = new TransactionalMap(uow);
  }

  async add(movement: Movement): Promise<void> {
    this.#products.set(movement.productId, [...(this.#products.get(movement.productId) ?? []), movement]);
  }

  async latest(productId: string, limit: number): Promise<Movement[]> {
    return (this.#products.get(productId) ?? []).slice(-limit).reverse();
  }
}

/** Keeps each product's alerts as an immutable list, oldest first, replaced on every write. */
@injectable()
export class MemoryLowStockAlertRepository implements LowStockAlertRepository {
  readonly #products: TransactionalMap<string, readonly LowStockAlertRecord[]>;

  constructor(@inject(MemoryUnitOfWork) uow: MemoryUnitOfWork) {
    this.#products = new TransactionalMap(uow);
  }

  async add(alert: LowStockAlertRecord): Promise<void> {
    const alerts = this.#products.get(alert.productId) ?? [];
    if (alerts.some((recorded) => recorded.jobId === alert.jobId)) return; // one alert per job, as in SQL
    this.#products.set(alert.productId, [...alerts, alert]);
  }

  async latest(productId: string, limit: number): Promise<LowStockAlertRecord[]> {
    return (this.#products.get(productId) ?? []).slice(-limit).reverse();
  }
}
