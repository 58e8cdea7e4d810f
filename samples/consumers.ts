// Starts the features' consumers and job workers, and keeps trying while the broker is unreachable, so the service
// can serve HTTP (and stage events and jobs in its outbox) before the broker is back.
import { consume, subscribe, type MessageSource } from '../lib/messaging/index.js';
import { typeOf, type Mediator } from '../lib/core/index.js';
import { work } from '../lib/jobs/index.js';
import type { Feature } from './shared/feature.js';

/** The sample's running consumers and workers. */
export interface Consumers {
  /**
   * Stops taking deliveries and waits up to `graceMs` for the handlers under way. Deliveries not acked by then stay
   * with the broker, which hands them out again once the connection closes (the inbox dedupes what did commit).
   * Resolves false when some handler was still running.
   */
  stop(graceMs: number): Promise<boolean>;
}

/** One queue to take deliveries from: what the logs call it, and how to start taking them. */
interface Taker {
  readonly name: string;
  start(): Promise<{ close(): Promise<void> }>;
}

/**
 * Consumes every feature's events from its queue (`queueOf(feature.consumer.queue)`) and runs its jobs (a worker per
 * job type, on the source's job queue), all through the mediator. One that cannot start (broker down) is retried
 * with backoff (0.5 s doubling to 10 s) until `stop()`.
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

  const takers: Taker[] = [];
  if (features.some((feature) => feature.subscribes)) {
    const service = queueOf('subscribers');
    takers.push({ name: `subscribers ${service}.*`, start: () => subscribe(mediator, source, service) });
  }
  for (const { consumer, jobs = [] } of features) {
    if (consumer) {
      const queue = queueOf(consumer.queue);
      takers.push({ name: `consumer ${queue}`, start: () => consume(mediator, source, queue, consumer.events) });
    }
    for (const job of jobs)
      takers.push({
        name: `worker ${mediator.ports.queues.job(typeOf(job))}`,
        // One type per work() call: a worker that cannot start is retried alone, never opened twice.
        start: async () => (await work(mediator, source, [job]))[0]!,
      });
  }

  for (const taker of takers) {
    starting.push(
      (async () => {
        for (let delay = 500, failures = 0; !stopped; delay = Math.min(delay * 2, 10_000)) {
          try {
            const subscription = await taker.start();
            if (stopped)
              await subscription.close(); // stop() came while it was starting
            else subscriptions.push(subscription);
            if (failures > 0) log(`${taker.name}: started after ${failures} failed attempts`);
            return;
          } catch (error) {
            if (failures++ === 0) log(`${taker.name}: cannot start yet, retrying: ${(error as Error).message}`);
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
