// The outbox backlog as an observable gauge.
import { metrics, type MeterProvider, type ObservableResult } from '@opentelemetry/api';
import type { Outbox } from '../../lib/core/ports.js';
import { SCOPE } from './scope.js';

/** An outbox that can also count its parked rows (as `KnexOutbox.status()` does). */
type CountingOutbox = Pick<Outbox, 'pending'> & {
  status?(): Promise<{ readonly totals: { readonly parked: number } }>;
};

/**
 * Reports the outbox's unsent messages as the observable gauge `usecasecore.outbox.backlog` (and the parked ones,
 * attribute `usecasecore.outbox.state`, when the outbox can count them: `status().totals.parked`). Returns the
 * unregistration.
 * @example const stop = observeOutboxBacklog(container.get(TOKENS.Outbox));
 */
export function observeOutboxBacklog(
  outbox: CountingOutbox,
  options: { readonly meterProvider?: MeterProvider } = {},
): () => void {
  const meter = (options.meterProvider ?? metrics.getMeterProvider()).getMeter(SCOPE);
  const backlog = meter.createObservableGauge('usecasecore.outbox.backlog', {
    unit: '{message}',
    description: 'Committed messages not yet sent (unsent), and those set aside with their error (parked)',
  });
  const observe = async (result: ObservableResult) => {
    result.observe(await outbox.pending(), { 'usecasecore.outbox.state': 'unsent' });
    const parked = (await outbox.status?.())?.totals.parked;
    if (typeof parked === 'number') result.observe(parked, { 'usecasecore.outbox.state': 'parked' });
  };
  backlog.addCallback(observe);
  return () => backlog.removeCallback(observe);
}
