// The sample's repositories in memory, bound under their tokens next to memoryModule()'s ports.
import { ContainerModule } from 'inversify';
import { AUDIT_EXPORT, MemoryAuditExport } from './audit/export.js';
import {
  CHARGE_STORE,
  MemoryChargeStore,
  MemoryReservationRepository,
  RESERVATION_REPOSITORY,
} from './checkout/index.js';
import {
  INVENTORY_REPOSITORY,
  LOW_STOCK_ALERT_REPOSITORY,
  MemoryInventoryRepository,
  MemoryLowStockAlertRepository,
  MemoryMovementRepository,
  MOVEMENT_REPOSITORY,
} from './inventory/index.js';
import { MemoryOrderRepository, ORDER_REPOSITORY } from './orders/index.js';
import { MemorySalesRepository, SALES_REPOSITORY } from './sales/index.js';

/**
 * Binds the inventory (stock, movements, low-stock alerts), order and sales repositories and the audit export to
 * their memory implementations (they need memoryModule() loaded).
 * @example container.load(memoryModule(), memoryRepositories());
 */
export function memoryRepositories(): ContainerModule {
  return new ContainerModule(({ bind }) => {
    bind(INVENTORY_REPOSITORY).to(MemoryInventoryRepository).inSingletonScope();
    bind(MOVEMENT_REPOSITORY).to(MemoryMovementRepository).inSingletonScope();
    bind(LOW_STOCK_ALERT_REPOSITORY).to(MemoryLowStockAlertRepository).inSingletonScope();
    bind(ORDER_REPOSITORY).to(MemoryOrderRepository).inSingletonScope();
    bind(SALES_REPOSITORY).to(MemorySalesRepository).inSingletonScope();
    bind(AUDIT_EXPORT).to(MemoryAuditExport).inSingletonScope();
    bind(RESERVATION_REPOSITORY).to(MemoryReservationRepository).inSingletonScope();
    bind(CHARGE_STORE).to(MemoryChargeStore).inSingletonScope();
  });
}
