// Low stock: a move that takes a bin below the threshold enqueues a LowStockAlert job; the job sends the alert, and
// its onSuccess callback, RecordLowStockAlert, records it once; GET /inventory/:productId/alerts reads them.
import { randomUUID } from 'node:crypto';
import { inject, injectable } from 'inversify';
import { handles, ok, type Context, type Handler } from '../../lib/core/index.js';
import { StockRanLow } from './events.js';
import { LOW_STOCK_ALERT_REPOSITORY, type LowStockAlertRepository } from './repository.js';
import { DEFAULT_HISTORY_LIMIT, GetLowStockAlerts, LowStockAlert, RecordLowStockAlert } from './requests.js';

/** A bin holding fewer units than this is low on stock. */
export const LOW_STOCK_THRESHOLD = 5;

/**
 * Whether a move took a bin from `before` units to below the threshold. Only the move that crosses it alerts: the
 * moves out of a bin that is low already do not alert again (until it is restocked to the threshold or above).
 */
export function fellBelowLowStock(before: number, after: number): boolean {
  return before >= LOW_STOCK_THRESHOLD && after < LOW_STOCK_THRESHOLD;
}

/**
 * Sends the alert. A real service would call its mail or paging API here (a transient failure is retried by the
 * worker, with backoff); the sample has none, so the alert goes out as an event, `inventory.low_stock`, for a
 * notifier to subscribe to — it leaves with the commit that settles the job.
 */
@handles(LowStockAlert)
@injectable()
export class LowStockAlertHandler implements Handler<LowStockAlert> {
  handle(job: LowStockAlert, ctx: Context<LowStockAlert>) {
    const alertId = randomUUID();
    const { productId, binId, qty, threshold, movementId } = job;
    ctx.publish(new StockRanLow({ alertId, productId, binId, qty, threshold, movementId }), { aggregateId: productId });
    return ok({ alertId });
  }
}

/**
 * LowStockAlert's onSuccess callback: records the alert with the job's id. It runs once per job — the inbox drops a
 * redelivered callback, and the repository keeps one alert per job id besides.
 */
@handles(RecordLowStockAlert)
@injectable()
export class RecordLowStockAlertHandler implements Handler<RecordLowStockAlert> {
  constructor(@inject(LOW_STOCK_ALERT_REPOSITORY) private readonly alerts: LowStockAlertRepository) {}

  async handle(callback: RecordLowStockAlert, ctx: Context<RecordLowStockAlert>) {
    const { productId, binId, qty, threshold, movementId } = callback.payload;
    const alert = {
      alertId: callback.result.alertId,
      jobId: callback.jobId,
      movementId,
      productId,
      binId,
      qty,
      threshold,
      at: new Date(ctx.ports.clock.now()).toISOString(),
    };
    await this.alerts.add(alert);
    return ok(alert);
  }
}

/** Reads a product's newest low-stock alerts, newest first. */
@handles(GetLowStockAlerts)
@injectable()
export class GetLowStockAlertsHandler implements Handler<GetLowStockAlerts> {
  constructor(@inject(LOW_STOCK_ALERT_REPOSITORY) private readonly alerts: LowStockAlertRepository) {}

  async handle(query: GetLowStockAlerts) {
    const alerts = await this.alerts.latest(query.productId, query.limit ?? DEFAULT_HISTORY_LIMIT);
    return ok({ productId: query.productId, alerts });
  }
}
