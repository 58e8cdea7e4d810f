// The inventory handlers: load the bins a decision depends on, then apply it and stage its event; read the bins and
// the movement history.
import { randomUUID } from 'node:crypto';
import { inject, injectable } from 'inversify';
import { handles, ok, type Context, type Handler } from '../../lib/core/index.js';
import { actorId } from '../shared/roles.js';
import { InventoryMoved, StockReceived } from './events.js';
import { fellBelowLowStock, LOW_STOCK_THRESHOLD } from './low-stock.js';
import {
  insufficientStock,
  INVENTORY_REPOSITORY,
  MOVEMENT_REPOSITORY,
  type InventoryRepository,
  type MovementRepository,
} from './repository.js';
import {
  DEFAULT_HISTORY_LIMIT,
  GetInventory,
  GetMovements,
  LowStockAlert,
  MoveInventory,
  ReceiveStock,
  RecordLowStockAlert,
} from './requests.js';

type Bins = ReadonlyMap<string, number>;

/** Adds the received quantity to the bin. */
@handles(ReceiveStock)
@injectable()
export class ReceiveStockHandler implements Handler<ReceiveStock, Bins> {
  constructor(@inject(INVENTORY_REPOSITORY) private readonly inventory: InventoryRepository) {}

  load(cmd: ReceiveStock) {
    return this.inventory.lockBins(cmd.productId, [cmd.binId]);
  }

  async handle(cmd: ReceiveStock, ctx: Context<ReceiveStock, Bins>) {
    const { productId, binId, qty } = cmd;
    const qtyAfter = (ctx.state.get(binId) ?? 0) + qty;
    await this.inventory.setQuantity(productId, binId, qtyAfter);
    ctx.publish(new StockReceived({ productId, binId, qty, qtyAfter }), { aggregateId: productId });
    return ok({ productId, binId, qtyAfter });
  }
}

/**
 * Moves stock between two bins, or fails with `insufficient_stock` when the source bin holds too little. Writes the
 * movement to the history in the same transaction, and when the move takes the source bin below the low-stock
 * threshold, enqueues a LowStockAlert job, whose `onSuccess` callback records the alert. (An idempotent replay
 * answers the stored result without running this: no second movement, no second job.)
 */
@handles(MoveInventory)
@injectable()
export class MoveInventoryHandler implements Handler<MoveInventory, Bins> {
  constructor(
    @inject(INVENTORY_REPOSITORY) private readonly inventory: InventoryRepository,
    @inject(MOVEMENT_REPOSITORY) private readonly movements: MovementRepository,
  ) {}

  load(cmd: MoveInventory) {
    return this.inventory.lockBins(cmd.productId, [cmd.fromBinId, cmd.toBinId]);
  }

  async handle(cmd: MoveInventory, ctx: Context<MoveInventory, Bins>) {
    const { productId, fromBinId, toBinId, qty, reason } = cmd;
    const available = ctx.state.get(fromBinId) ?? 0;
    const short = insufficientStock(available, qty);
    if (short) return short;
    const sourceQtyAfter = available - qty;
    const destQtyAfter = (ctx.state.get(toBinId) ?? 0) + qty;
    await this.inventory.setQuantity(productId, fromBinId, sourceQtyAfter);
    await this.inventory.setQuantity(productId, toBinId, destQtyAfter);
    const movementId = randomUUID();
    await this.movements.add({
      movementId,
      productId,
      fromBinId,
      toBinId,
      qty,
      sourceQtyAfter,
      destQtyAfter,
      actor: actorId(ctx) ?? null,
      reason,
      at: new Date(ctx.ports.clock.now()).toISOString(),
    });
    ctx.publish(new InventoryMoved({ productId, fromBinId, toBinId, qty, reason, sourceQtyAfter, destQtyAfter }), {
      aggregateId: productId,
    });
    if (fellBelowLowStock(available, sourceQtyAfter)) {
      const alert = new LowStockAlert({
        productId,
        binId: fromBinId,
        qty: sourceQtyAfter,
        threshold: LOW_STOCK_THRESHOLD,
        movementId,
      });
      ctx.enqueue(alert, { onSuccess: RecordLowStockAlert }); // leaves with this commit, or not at all
    }
    return ok({ sourceQtyAfter, destQtyAfter });
  }
}

/** Reads every bin of a product. */
@handles(GetInventory)
@injectable()
export class GetInventoryHandler implements Handler<GetInventory> {
  constructor(@inject(INVENTORY_REPOSITORY) private readonly inventory: InventoryRepository) {}

  async handle(query: GetInventory) {
    const bins = await this.inventory.bins(query.productId);
    return ok({ productId: query.productId, bins: Object.fromEntries(bins) });
  }
}

/** Reads a product's newest movements, newest first. */
@handles(GetMovements)
@injectable()
export class GetMovementsHandler implements Handler<GetMovements> {
  constructor(@inject(MOVEMENT_REPOSITORY) private readonly movements: MovementRepository) {}

  async handle(query: GetMovements) {
    const movements = await this.movements.latest(query.productId, query.limit ?? DEFAULT_HISTORY_LIMIT);
    return ok({ productId: query.productId, movements });
  }
}
