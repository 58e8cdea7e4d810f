// Who may do what to the inventory.
import { everyone, rule, type PolicyRule } from '../../middleware/index.js';
import { hasAnyRole } from '../shared/roles.js';
import { GetInventory, MoveInventory, ReceiveStock } from './requests.js';

/** Managers receive stock, clerks and managers move it, anyone reads it. */
export const inventoryRules: readonly PolicyRule[] = [
  rule(
    ReceiveStock,
    (ctx) => hasAnyRole(ctx, 'manager') || { allow: false, reason: 'Only managers may receive stock' },
  ),
  rule(
    MoveInventory,
    (ctx) => hasAnyRole(ctx, 'clerk', 'manager') || { allow: false, reason: 'Only clerks and managers may move stock' },
  ),
  everyone(GetInventory),
];
