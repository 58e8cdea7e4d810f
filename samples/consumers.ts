// Starts the features' consumers, and keeps trying while the broker is unreachable, so the service can serve HTTP
// (and stage events in its outbox) before the broker is back.
import { consume, type Mediator, type MessageSource } from '../lib/index.js';
import type { Feature } from './shared/feature.js';

/** The sample's running consumers. */
export interface Consumers {
  /**
   * Stops taking deliveries and waits up to `graceMs` for the handlers under way. Deliveries not acked by then stay
   * with the broker, which hands them out again once the connection closes (the inbox dedupes what did commit).
   * Resolves false when some handler was still running.
   */
  stop(graceMs: number): Promise<boolean>;
}

/**
 * Consumes every feature's events from its queue (`queueOf(feature.consumer.queue)`) through the mediator. A
 * consumer that cannot start (broker down) is retried with backoff (0.5 s doubling to 10 s) until `stop()`.
 * @example const consumers = startConsumers(FEATURES, mediator, source, backend.queue); …; await consumers.stop(3_000);
 */
export function startConsumers(
  features: readonly Feature[],
  mediator: Mediator,
  source: MessageSource,
  queueOf: (name: string) => string,
  log: (line: string) => void = console.error,
): Consumers {
  let stopped = false;
  const subscriptions: Array<{ close(): Promise<void> }> = [];
  const starting: Array<Promise<void>> = [];
  const waits = new Set<() => void>(); // backoff waits, ended early by stop()

  for (const { consumer } of features) {
    if (!consumer) continue;
    const queue = queueOf(consumer.queue);
    starting.push(
      (async () => {
        for (let delay = 500, failures = 0; !stopped; delay = Math.min(delay * 2, 10_000)) {
          try {
            const subscription = await consume(mediator, source, queue, consumer.events);
            if (stopped)
              await subscription.close(); // stop() came while it was starting
            else subscriptions.push(subscription);
            if (failures > 0) log(`consumer ${queue}: started after ${failures} failed attempts`);
            return;
          } catch (error) {
            if (failures++ === 0) log(`consumer ${queue}: cannot start yet, retrying: ${(error as Error).message}`);
            await new Promise<void>((resolve) => {
              const end = () => {
                clearTimeout(timer);
                waits.delete(end);
                resolve();
              };
              const timer = setTimeout(end, delay);
              waits.add(end);
            });
          }
        }
      })(),
    );
  }

  return {
    async stop(graceMs) {
      stopped = true;
      for (const end of [...waits]) end();
      let timer: NodeJS.Timeout | undefined;
      const closing = Promise.all(starting).then(() => Promise.all(subscriptions.map((s) => s.close())));
      const inTime = await Promise.race([
        closing.then(() => true),
        new Promise<false>((resolve) => {
          timer = setTimeout(() => resolve(false), graceMs);
        }),
      ]);
      clearTimeout(timer);
      return inTime;
    },
  };
}
