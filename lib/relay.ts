// Moves committed outbox rows to a bus: woken after commit, polling as a fallback, one pass at a time, each pass
// keeping up to `pipeline` batches in flight.
import type { MessageBus, Outbox, OutboxMessage, PublishReport, Relay } from './ports.js';

/** Relay tuning. */
export interface RelayOptions {
  /** Rows claimed per batch. Default 500 (bench:amqp, see bench/README.md). */
  readonly batchSize?: number;
  /**
   * Batches in flight at once, each from its claim until its rows are marked: while one waits for the broker's
   * confirms, the next is claimed and published. Default 2; 1 runs batches one after another.
   */
  readonly pipeline?: number;
  /** Failed attempts of one message after which it is parked with its error. Default 5. */
  readonly maxAttempts?: number;
  /** First and longest wait after a failed pass, in ms. Defaults 50 and 5,000. */
  readonly backoffMs?: readonly [first: number, max: number];
  /**
   * Hears each failure the relay recovers from by itself: a publish that threw (the bus unreachable: the batch is
   * released and retried after a backoff) or a pass that failed (the outbox unreachable: the next poll tries again).
   * Called once per failure, so rate-limit what you log. Default: failures are not reported.
   */
  readonly onError?: (error: unknown) => void;
}

/** A relay you can start polling (rows committed by other processes) and stop. */
export interface RunningRelay extends Relay {
  /** Also runs a pass every `pollMs` (unref'd), for rows no wake() announced. */
  start(pollMs?: number): void;
  /** Stops polling and waking, and waits for the batches in flight. */
  stop(): Promise<void>;
}

/**
 * A relay over any Outbox and MessageBus. Nothing is buffered in memory beyond the batches in flight: rows stay in
 * the outbox until confirmed; while the bus is unreachable, claims are released and the relay backs off without
 * counting attempts.
 * @example const relay = createRelay(outbox, bus); relay.start(1_000); ...; await relay.drain();
 */
export function createRelay(outbox: Outbox, bus: MessageBus, options: RelayOptions = {}): RunningRelay {
  const { batchSize = 500, pipeline = 2, maxAttempts = 5, backoffMs: [first, max] = [50, 5_000] } = options;
  const depth = Math.max(1, Math.floor(pipeline));
  const notify = (error: unknown) => {
    try {
      options.onError?.(error);
    } catch {
      // a failing listener must not stop the relay
    }
  };
  let running: Promise<void> | undefined;
  let again = false;
  let stopped = false;
  let delay = 0;
  let poller: NodeJS.Timeout | undefined;
  let pause: { timer: NodeJS.Timeout; resolve: () => void } | undefined;

  /** Publishes one claimed batch and settles every row of it; true when the bus failed some of it. */
  async function deliver(batch: readonly OutboxMessage[]): Promise<boolean> {
    let report: PublishReport;
    try {
      report = await bus.publish(batch);
    } catch (error) {
      notify(error);
      await outbox.release(batch.map((m) => m.id)); // unreachable: no fault of the rows, no attempt counted
      return true;
    }
    // Only what the broker confirmed is marked sent; unanswered rows go back untouched, nacked ones count an attempt.
    if (report.sent.length > 0) await outbox.markSent(report.sent);
    const unconfirmed = report.unconfirmed ?? [];
    if (unconfirmed.length > 0) await outbox.release(unconfirmed);
    const attempts = new Map(batch.map((m) => [m.id, m.attempts ?? 0]));
    for (const f of report.failed)
      await outbox.markFailed(f.id, f.error, f.permanent || (attempts.get(f.id) ?? 0) + 1 >= maxAttempts);
    return report.failed.length > 0 || unconfirmed.length > 0;
  }

  async function backOff(): Promise<void> {
    delay = Math.min(delay === 0 ? first : delay * 2, max);
    await new Promise<void>((resolve) => {
      pause = { timer: setTimeout(resolve, delay), resolve };
    });
    pause = undefined;
  }

  /**
   * Claims and delivers batches until a claim comes back empty with nothing in flight, `depth` batches at most.
   * Pipelining keeps per-aggregate order because the outbox hands out no later row of an aggregate while an earlier
   * one is unsent, and a claimed row is unsent until its batch marks it. So an empty claim only ends the pass once
   * nothing is in flight: a batch being marked may free the next row of its aggregates.
   */
  async function pass(): Promise<void> {
    const inFlight = new Set<Promise<void>>();
    let busFailed = false;
    let outboxError: { cause: unknown } | undefined; // a write of a settling batch failed: the pass fails with it
    const launch = (batch: readonly OutboxMessage[]) => {
      const settled = deliver(batch)
        .then(
          (failed) => {
            if (failed) busFailed = true;
            else delay = 0;
          },
          (cause: unknown) => {
            outboxError ??= { cause };
          },
        )
        .finally(() => inFlight.delete(settled));
      inFlight.add(settled);
    };
    try {
      while (!stopped && !outboxError) {
        if (busFailed) {
          // Let the other batches settle (their rows released or marked), then wait with nothing claimed.
          await Promise.all(inFlight);
          await backOff();
          busFailed = false;
          continue;
        }
        // After a failure, one batch probes the bus until one goes through: an outage never holds two batches.
        if (inFlight.size >= (delay === 0 ? depth : 1)) {
          await Promise.race(inFlight);
          continue;
        }
        again = false;
        const batch = await outbox.claim(batchSize);
        if (batch.length === 0) {
          if (inFlight.size === 0) break;
          await Promise.race(inFlight);
        } else if (stopped || busFailed || outboxError) {
          // Claimed ahead while stopping or failing: hand the rows back rather than publish into an outage.
          await outbox.release(batch.map((m) => m.id));
        } else launch(batch);
      }
    } finally {
      await Promise.all(inFlight); // stop() and a failed claim wait for every batch in flight
    }
    if (outboxError) throw outboxError.cause;
  }

  function wake(): Promise<void> {
    if (stopped) return Promise.resolve();
    if (running) {
      again = true;
      return running;
    }
    const passing = pass().catch((error: unknown) => {
      notify(error); // once per failed pass, however many wakes joined it
      throw error;
    });
    running = passing.finally(() => {
      running = undefined;
      if (again && !stopped) void wake().catch(() => undefined); // a wake that came after the pass's last claim
    });
    return running;
  }

  return {
    wake() {
      void wake().catch(() => undefined);
    },
    start(pollMs = 1_000) {
      stopped = false;
      clearInterval(poller);
      poller = setInterval(() => void wake().catch(() => undefined), pollMs);
      poller.unref();
      void wake().catch(() => undefined);
    },
    async stop() {
      stopped = true;
      clearInterval(poller);
      if (pause) {
        clearTimeout(pause.timer);
        pause.resolve();
      }
      await running?.catch(() => undefined);
    },
    async drain(timeoutMs = 5_000) {
      const deadline = Date.now() + timeoutMs;
      while ((await outbox.pending()) > 0) {
        const left = deadline - Date.now();
        if (left <= 0)
          throw new Error(`Relay did not drain within ${timeoutMs} ms: ${await outbox.pending()} messages pending`);
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          running ?? wake(),
          new Promise((resolve) => {
            timer = setTimeout(resolve, left);
          }),
        ]);
        clearTimeout(timer);
        await new Promise((resolve) => setImmediate(resolve));
      }
    },
  };
}
