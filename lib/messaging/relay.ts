// Moves committed outbox rows to a bus: woken after commit, polling as a fallback, one pass at a time, each pass
// keeping up to `pipeline` batches in flight.
import type { ContainerModuleLoadOptions } from 'inversify';
import { defaultLogger, type Logger } from '../core/logger.js';
import type {
  BusState,
  MessageBus,
  Outbox,
  OutboxMessage,
  PublishReport,
  Relay,
  RelayStatus,
  Telemetry,
} from '../core/ports.js';
import { TOKENS } from '../core/tokens.js';

/** How often drain() looks again when a pass moved nothing (the rows are another relay's until its lease ends). */
const DRAIN_POLL_MS = 25;

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
  /** Traces each publish (`otelModule()` binds one; the adapter modules pass the container's). */
  readonly telemetry?: Telemetry | undefined;
  /**
   * Hears, once each, an outage of the bus (and its end), a blocked broker (and its end), and every message parked
   * with its id. The adapter modules pass the container's Logger. Default: nothing is logged.
   */
  readonly logger?: Logger | undefined;
}

/** A relay you can start polling (rows committed by other processes) and stop. */
export interface RunningRelay extends Relay {
  /** Also runs a pass every `pollMs` (unref'd), for rows no wake() announced. */
  start(pollMs?: number): void;
  /**
   * Stops polling and waking, and waits for the batches in flight. While the bus is blocked, a batch in flight waits
   * for the broker to let go (or for its connection to close): give `stop()` a deadline, then close the connection.
   */
  stop(): Promise<void>;
  /**
   * What the relay is doing now: polling or not, the bus's flow control, the current backoff.
   * @example app.get('/health', (_, res) => res.json(relay.status())); // { running, bus: { blocked }, backoffMs }
   */
  status(): RelayStatus;
}

/**
 * A relay over any Outbox and MessageBus. Nothing is buffered in memory beyond the batches in flight: rows stay in
 * the outbox until confirmed; while the bus is unreachable, claims are released and the relay backs off without
 * counting attempts; while the bus says it is blocked (`bus.state()`, a broker's memory or disk alarm), it claims
 * nothing until the bus lets go, and the batches already published wait for their confirms.
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
  /** Ends the wait under way (a backoff, or a blocked bus) early: stop() calls it. */
  let resumeNow: (() => void) | undefined;
  /** Since when the bus has been unreachable (logged once per outage). */
  let outage: { since: string } | undefined;
  /** Since when the bus has been blocked (logged once per blocked spell). */
  let blockedSince: string | undefined;
  const busState = (): BusState => bus.state?.() ?? { blocked: false };

  /** Publishes one claimed batch and settles every row of it; true when the bus failed some of it. */
  async function deliver(batch: readonly OutboxMessage[]): Promise<boolean> {
    let report: PublishReport;
    const traced = options.telemetry?.publishing?.(batch, bus);
    try {
      report = await bus.publish(traced?.batch ?? batch);
      traced?.end(report);
      if (outage) options.logger?.info('relay: the bus is reachable again; publishing', { since: outage.since });
      outage = undefined;
    } catch (error) {
      traced?.end(undefined, error);
      if (!outage) {
        outage = { since: new Date().toISOString() };
        options.logger?.warn('relay: the bus is unreachable; rows stay in the outbox, backing off', { error });
      }
      notify(error);
      await outbox.release(batch.map((m) => m.id)); // unreachable: no fault of the rows, no attempt counted
      return true;
    }
    // Only what the broker confirmed is marked sent; unanswered rows go back untouched, nacked ones count an attempt.
    if (report.sent.length > 0) await outbox.markSent(report.sent);
    const unconfirmed = report.unconfirmed ?? [];
    if (unconfirmed.length > 0) await outbox.release(unconfirmed);
    const byId = report.failed.length > 0 ? new Map(batch.map((m) => [m.id, m])) : undefined;
    for (const f of report.failed) {
      const message = byId?.get(f.id);
      const tries = (message?.attempts ?? 0) + 1;
      const park = f.permanent || tries >= maxAttempts;
      await outbox.markFailed(f.id, f.error, park);
      if (park) {
        options.logger?.error(
          'relay: parked a message its publishes failed for; retry it with usecasecore outbox retry',
          { messageId: f.id, type: message?.type, attempts: tries, error: f.error },
        );
      }
    }
    return report.failed.length > 0 || unconfirmed.length > 0;
  }

  /** Waits until `arm`'s triggers call `resume` (or stop() does); `arm` returns how to remove them. */
  async function waitFor(arm: (resume: () => void) => () => void): Promise<void> {
    let disarm: (() => void) | undefined;
    await new Promise<void>((resolve) => {
      resumeNow = resolve;
      disarm = arm(resolve);
    });
    disarm?.();
    resumeNow = undefined;
  }

  function backOff(): Promise<void> {
    delay = Math.min(delay === 0 ? first : delay * 2, max);
    return waitFor((resume) => {
      const timer = setTimeout(resume, delay);
      return () => clearTimeout(timer);
    });
  }

  /**
   * Waits while the bus is blocked: until it lets go, or a batch in flight settles (`settles` hears that: its
   * connection closed, say), or stop(). No attempt is counted and no error reported: the broker asked us to wait.
   */
  async function whileBlocked(settles: Set<() => void>): Promise<void> {
    const state = busState();
    const reason = state.blocked ? state.reason : undefined;
    // Once per blocked spell: this wait also ends each time a batch in flight settles while the bus stays blocked.
    if (!blockedSince) {
      blockedSince = new Date().toISOString();
      options.logger?.warn('relay: the broker blocks publishing; waiting, nothing is lost', { reason });
    }
    await waitFor((resume) => {
      const off = bus.onStateChange?.((state) => {
        if (!state.blocked) resume();
      });
      // A bus that has state() but no onStateChange is asked again after a short wait.
      const timer = off ? undefined : setTimeout(resume, first);
      settles.add(resume);
      if (!busState().blocked) resume(); // it let go before we listened
      return () => {
        off?.();
        clearTimeout(timer);
        settles.delete(resume);
      };
    });
    if (!busState().blocked) {
      options.logger?.info('relay: the broker takes publishes again', { reason, since: blockedSince });
      blockedSince = undefined;
    }
  }

  /**
   * Claims and delivers batches until a claim comes back empty with nothing in flight, `depth` batches at most.
   * Pipelining keeps per-aggregate order because the outbox hands out no later row of an aggregate while an earlier
   * one is unsent, and a claimed row is unsent until its batch marks it. So an empty claim only ends the pass once
   * nothing is in flight: a batch being marked may free the next row of its aggregates.
   */
  async function pass(): Promise<void> {
    const inFlight = new Set<Promise<void>>();
    const settles = new Set<() => void>(); // who waits for any batch to settle (whileBlocked)
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
        .finally(() => {
          inFlight.delete(settled);
          for (const settle of settles) settle();
        });
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
        if (busState().blocked) {
          await whileBlocked(settles);
          continue;
        }
        again = false;
        const batch = await outbox.claim(batchSize);
        if (batch.length === 0) {
          if (inFlight.size === 0) break;
          await Promise.race(inFlight);
        } else if (stopped || busFailed || outboxError || busState().blocked) {
          // Claimed ahead while stopping, failing or blocked: hand the rows back rather than publish them now.
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

  /** What drain() says when it gives up: how many are left and, when the broker pushes back, why and what to do. */
  async function undrained(): Promise<string> {
    const pending = `${await outbox.pending()} messages pending`;
    const state = busState();
    if (!state.blocked) return pending;
    return (
      `${pending}; the broker has blocked publishing since ${state.since} (${state.reason}). Nothing is lost: ` +
      'the relay resumes when the broker clears its resource alarm (rabbitmqctl status lists alarms; free memory ' +
      'or disk, or let consumers drain the queues).'
    );
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
      poller = undefined;
      resumeNow?.();
      await running?.catch(() => undefined);
    },
    status() {
      return { running: poller !== undefined, bus: busState(), backoffMs: delay };
    },
    async drain(timeoutMs = 5_000) {
      const deadline = Date.now() + timeoutMs;
      for (let pending = await outbox.pending(); pending > 0;) {
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`Relay did not drain within ${timeoutMs} ms: ${await undrained()}`);
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          running ?? wake(),
          new Promise((resolve) => {
            timer = setTimeout(resolve, left);
          }),
        ]);
        clearTimeout(timer);
        const now = await outbox.pending();
        // Nothing moved (another relay holds the rows until its lease ends, or this one is stopped): poll, not spin.
        const pause = now >= pending ? Math.min(DRAIN_POLL_MS, Math.max(0, deadline - Date.now())) : 0;
        await new Promise((resolve) => (pause > 0 ? setTimeout(resolve, pause) : setImmediate(resolve)));
        pending = now;
      }
    },
  };
}

/**
 * Binds `TOKENS.Relay` (a singleton) to a relay over the container's Outbox and `bus`, with the container's
 * Telemetry and Logger: the bus modules' part (memoryModule(), amqpModule()). `withLogger` hears that Logger once,
 * when the relay is made (every mediator resolves it, as a port).
 * @example new ContainerModule(({ bind }) => bindRelay(bind, myBus, { batchSize: 100 }));
 */
export function bindRelay(
  bind: ContainerModuleLoadOptions['bind'],
  bus: MessageBus,
  options: RelayOptions = {},
  withLogger?: (logger: Logger) => void,
): void {
  bind(TOKENS.Relay)
    .toResolvedValue(
      (outbox: Outbox, telemetry: Telemetry | undefined, bound: Logger | undefined) => {
        const logger = bound ?? defaultLogger;
        withLogger?.(logger);
        return createRelay(outbox, bus, { telemetry, logger, ...options });
      },
      [
        TOKENS.Outbox,
        { serviceIdentifier: TOKENS.Telemetry, optional: true },
        { serviceIdentifier: TOKENS.Logger, optional: true },
      ],
    )
    .inSingletonScope();
}
