// Moves committed outbox rows to a bus: woken after commit, one pass at a time, backing off while the bus fails.
import type { MessageBus, Outbox, Relay } from './ports.js';

/** Relay tuning. */
export interface RelayOptions {
  /** Rows claimed per pass. Default 100. */
  readonly batchSize?: number;
  /** Failed attempts after which a row is parked with its error. Default 5. */
  readonly maxAttempts?: number;
  /** First and longest wait after a failed pass, in ms. Defaults 50 and 5,000. */
  readonly backoffMs?: readonly [first: number, max: number];
}

/**
 * A relay over any Outbox and MessageBus. Nothing is buffered in memory: rows stay in the outbox until confirmed.
 * @example const relay = createRelay(outbox, bus); ...; await relay.drain();
 */
export function createRelay(outbox: Outbox, bus: MessageBus, options: RelayOptions = {}): Relay & { stop(): void } {
  const { batchSize = 100, maxAttempts = 5, backoffMs: [first, max] = [50, 5_000] } = options;
  let running: Promise<void> | undefined;
  let again = false;
  let stopped = false;
  let delay = 0;

  async function pass(): Promise<void> {
    do {
      again = false;
      for (;;) {
        const batch = await outbox.claim(batchSize);
        if (batch.length === 0) break;
        const report = await bus.publish(batch).catch((error: unknown) => ({
          sent: [], failed: batch.map((m) => ({ id: m.id, error: String(error), permanent: false })),
        }));
        if (report.sent.length > 0) await outbox.markSent(report.sent);
        const attempts = new Map(batch.map((m) => [m.id, m.attempts ?? 0]));
        for (const f of report.failed) await outbox.markFailed(f.id, f.error, f.permanent || (attempts.get(f.id) ?? 0) + 1 >= maxAttempts);
        if (report.failed.length === 0) { delay = 0; continue; }
        delay = Math.min(delay === 0 ? first : delay * 2, max);
        await new Promise((resolve) => setTimeout(resolve, delay));
        if (stopped) return;
      }
    } while (again && !stopped);
  }

  function wake(): Promise<void> {
    if (stopped) return Promise.resolve();
    if (running) { again = true; return running; }
    running = pass().finally(() => { running = undefined; });
    return running;
  }

  return {
    wake() { void wake().catch(() => undefined); },
    async drain(timeoutMs = 5_000) {
      const deadline = Date.now() + timeoutMs;
      while ((await outbox.pending()) > 0) {
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`Relay did not drain within ${timeoutMs} ms: ${await outbox.pending()} messages pending`);
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([running ?? wake(), new Promise((resolve) => { timer = setTimeout(resolve, left); })]);
        clearTimeout(timer);
        await new Promise((resolve) => setImmediate(resolve));
      }
    },
    stop() { stopped = true; },
  };
}
