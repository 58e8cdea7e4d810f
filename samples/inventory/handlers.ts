// The inventory handlers: load the bins a decision depends on, then apply it and stage its event.
import { inject, injectable } from 'inversify';
import { handles, ok, type Context, type Handler } from '../../lib/index.js';
import { InventoryMoved, StockReceived } from './events.js';
import { insufficientStock, INVENTORY_REPOSITORY, type InventoryRepository } from './repository.js';
import { GetInventory, MoveInventory, ReceiveStock } from './requests.js';

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

/** Moves stock between two bins, or fails with `insufficient_stock` when the source bin holds too little. */
@handles(MoveInventory)
@injectable()
export class MoveInventoryHandler implements Handler<MoveInventory, Bins> {
  constructor(@inject(INVENTORY_REPOSITORY) private readonly inventory: InventoryRepository) {}

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
    ctx.publish(new InventoryMoved({ productId, fromBinId, toBinId, qty, reason, sourceQtyAfter, destQtyAfter }), {
      aggregateId: productId,
    });
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
