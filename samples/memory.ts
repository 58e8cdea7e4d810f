// The sample's repositories in memory, bound under their tokens next to memoryModule()'s ports.
import { ContainerModule } from 'inversify';
import { AUDIT_EXPORT, MemoryAuditExport } from './audit/export.js';
import { MemoryInventoryRepository, INVENTORY_REPOSITORY } from './inventory/index.js';
import { MemoryOrderRepository, ORDER_REPOSITORY } from './orders/index.js';
import { MemorySalesRepository, SALES_REPOSITORY } from './sales/index.js';

/**
 * Binds the inventory, order and sales repositories and the audit export to their memory implementations (they need
 * memoryModule() loaded).
 * @example container.load(memoryModule(), memoryRepositories());
 */
export function memoryRepositories(): ContainerModule {
  return new ContainerModule(({ bind }) => {
    bind(INVENTORY_REPOSITORY).to(MemoryInventoryRepository).inSingletonScope();
    bind(ORDER_REPOSITORY).to(MemoryOrderRepository).inSingletonScope();
    bind(SALES_REPOSITORY).to(MemorySalesRepository).inSingletonScope();
    bind(AUDIT_EXPORT).to(MemoryAuditExport).inSingletonScope();
  });
}
