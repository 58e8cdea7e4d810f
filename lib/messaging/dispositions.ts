// When a delivery is given up on: the one rule every source (memory, RabbitMQ) and consumer (consume, the job
// runner) reads, so the broker and the library never disagree on which attempt was the last.
import type { Disposition } from './ports.js';

/**
 * What a source does with `disposition` at `attempt` of `maxAttempts`: a retry asked for at (or past) the last
 * attempt is dead-lettered; anything else stands. A handler that throws asks for a retry (see `thrown`).
 * @example source.settle(settlement(await handle(delivery), delivery.attempt, options.maxAttempts))
 */
export function settlement(disposition: Disposition, attempt: number, maxAttempts: number): Disposition {
  if (disposition.action !== 'retry' || attempt < maxAttempts) return disposition;
  return { action: 'dead', reason: `gave up after ${attempt} attempts: ${disposition.reason ?? 'retry'}` };
}

/**
 * The disposition of a handler that threw: a retry, with the error as its reason.
 * @example const disposition = await handle(delivery).catch(thrown);
 */
export function thrown(error: unknown): Disposition {
  return { action: 'retry', reason: String(error) };
}
