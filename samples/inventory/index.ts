// The inventory feature: receive and move stock, read a product's bins and its movement history; alert on low stock.
import type { Feature } from '../shared/feature.js';
import { GetInventoryHandler, GetMovementsHandler, MoveInventoryHandler, ReceiveStockHandler } from './handlers.js';
import { GetLowStockAlertsHandler, LowStockAlertHandler, RecordLowStockAlertHandler } from './low-stock.js';
import { inventoryRules } from './policy.js';
import { LowStockAlert, RecordLowStockAlert } from './requests.js';

export * from './events.js';
export * from './repository.js';
export * from './requests.js';
export { fellBelowLowStock, LOW_STOCK_THRESHOLD } from './low-stock.js';
export {
  MemoryInventoryRepository,
  MemoryLowStockAlertRepository,
  MemoryMovementRepository,
} from './memory-repository.js';

/**
 * Inventory: managers receive stock, clerks and managers move it (each move recorded in the movement history),
 * anyone reads it; a move that takes a bin below the threshold enqueues a LowStockAlert job, whose callback records
 * the alert.
 */
export const inventory: Feature = {
  handlers: [
    ReceiveStockHandler,
    MoveInventoryHandler,
    GetInventoryHandler,
    GetMovementsHandler,
    LowStockAlertHandler,
    RecordLowStockAlertHandler,
    GetLowStockAlertsHandler,
  ],
  rules: inventoryRules,
  jobs: [LowStockAlert, RecordLowStockAlert],
};
