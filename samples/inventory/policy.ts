// Who may do what to the inventory.
import type { Context } from '../../lib/core/index.js';
import { everyone, rule, type PolicyRule } from '../../middleware/index.js';
import { hasAnyRole } from '../shared/roles.js';
import {
  GetInventory,
  GetLowStockAlerts,
  GetMovements,
  LowStockAlert,
  MoveInventory,
  ReceiveStock,
  RecordLowStockAlert,
} from './requests.js';

/** Allows a job type only when a worker runs it: a client cannot send an alert, nor record one, by itself. */
const onlyAsJob = (ctx: Context) =>
  ctx.meta.job !== undefined || {
    allow: false,
    reason: `${ctx.type} runs only as a job a move enqueued, never sent directly`,
  };

/** Managers receive stock, clerks and managers move it, anyone reads it; the low-stock jobs run as jobs only. */
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
  everyone(GetMovements),
  everyone(GetLowStockAlerts),
  rule(LowStockAlert, onlyAsJob),
  rule(RecordLowStockAlert, onlyAsJob),
];
