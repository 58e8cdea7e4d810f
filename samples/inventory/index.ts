// The inventory feature: receive and move stock, read a product's bins.
import type { Feature } from '../shared/feature.js';
import { GetInventoryHandler, MoveInventoryHandler, ReceiveStockHandler } from './handlers.js';
import { inventoryRules } from './policy.js';

export * from './events.js';
export * from './repository.js';
export * from './requests.js';
export { MemoryInventoryRepository } from './memory-repository.js';

/** Inventory: managers receive stock, clerks and managers move it, anyone reads it. */
export const inventory: Feature = {
  handlers: [ReceiveStockHandler, MoveInventoryHandler, GetInventoryHandler],
  rules: inventoryRules,
};
