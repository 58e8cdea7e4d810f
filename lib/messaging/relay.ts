// Moves committed outbox rows to a bus: woken after commit, polling as a fallback, one pass at a time, each pass
// keeping up to `pipeline` batches in flight.
import type { ContainerModuleLoadOptions, ServiceIdentifier } from 'inversify';
import { defaultLogger, type Logger } from '../core/logger.js';
import type { Outbox, OutboxMessage } from '../core/ports.js';
import { TOKENS } from '../core/tokens.js';
import type { BusState, MessageBus, MessagingTelemetry, PublishReport, RelayStatus, RunningRelay } from './ports.js';

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
  readonly telemetry?: MessagingTelemetry | undefined;
  /**
   * Hears, once each, an outage of the bus (and its end), a blocked broker (and its end), and every message parked
   * with its id. The adapter modules pass the container's Logger. Default: nothing is logged.
   */
  readonly logger?: Logger | undefined;
}

/**
 * A relay over any Outbox and MessageBus. Nothing is buffered in memory beyond the batches in flight: rows stay in
 * the outbox until confirmed; while the bus is unreachable, claims are released and the relay backs off without
 * counting attempts; while the bus says it is blocked (`bus.state()`, a broker's memory or disk alarm), it claims
 * nothing until the bus lets go, and the batches already published wait for their confirms.
 * @example const relay = createRelay(outbox, bus); relay.start(1_000); ...; await relay.drain();
 */
export function createRelay(outbox: Outbox, bus: MessageBus, options: RelayOptions = {}): RunningRelay {
  return new OutboxRelay(outbox, bus, options);
}

/** One pass's batches in flight, and what went wrong with them. */
interface PassState {
  readonly inFlight: Set<Promise<void>>;
  /** Who waits for any batch to settle (a wait while the bus is blocked). */
  readonly settles: Set<() => void>;
  busFailed: boolean;
  /** A write of a settling batch failed: the pass fails with it. */
  outboxError: { cause: unknown } | undefined;
}

class OutboxRelay implements RunningRelay {
  readonly #batchSize: number;
  readonly #depth: number;
  readonly #maxAttempts: number;
  readonly #backoff: readonly [first: number, max: number];
  #running: Promise<void> | undefined;
  /** A wake came while a pass ran: run another once it ends. */
  #again = false;
  #stopped = false;
  /** The current backoff (ms); 0 once a batch went through. */
  #delay = 0;
  #poller: NodeJS.Timeout | undefined;
  /** Ends the wait under way (a backoff, or a blocked bus) early: stop() calls it. */
  #resumeNow: (() => void) | undefined;
  /** Since when the bus has been unreachable (logged once per outage). */
  #outageSince: string | undefined;
  /** Since when the bus has been blocked (logged once per blocked spell). */
  #blockedSince: string | undefined;

  constructor(
    private readonly outbox: Outbox,
    private readonly bus: MessageBus,
    private readonly options: RelayOptions,
  ) {
    this.#batchSize = options.batchSize ?? 500;
    this.#depth = Math.max(1, Math.floor(options.pipeline ?? 2));
    this.#maxAttempts = options.maxAttempts ?? 5;
    this.#backoff = options.backoffMs ?? [50, 5_000];
  }

  wake(): void {
    void this.#wake().catch(() => undefined);
  }

  start(pollMs = 1_000): void {
    this.#stopped = false;
    clearInterval(this.#poller);
    this.#poller = setInterval(() => this.wake(), pollMs);
    this.#poller.unref();
    this.wake();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#poller);
    this.#poller = undefined;
    this.#resumeNow?.();
    await this.#running?.catch(() => undefined);
  }

  status(): RelayStatus {
    return { running: this.#poller !== undefined, bus: this.#busState(), backoffMs: this.#delay };
  }

  async drain(timeoutMs = 5_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (let pending = await this.outbox.pending(); pending > 0;) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`Relay did not drain within ${timeoutMs} ms: ${await this.#undrained()}`);
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        this.#running ?? this.#wake(),
        new Promise((resolve) => {
          timer = setTimeout(resolve, left);
        }),
      ]);
      clearTimeout(timer);
      const now = await this.outbox.pending();
      // Nothing moved (another relay holds the rows until its lease ends, or this one is stopped): poll, not spin.
      const pause = now >= pending ? Math.min(DRAIN_POLL_MS, Math.max(0, deadline - Date.now())) : 0;
      await new Promise((resolve) => (pause > 0 ? setTimeout(resolve, pause) : setImmediate(resolve)));
      pending = now;
    }
  }

  #wake(): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    if (this.#running) {
      this.#again = true;
      return this.#running;
    }
    const passing = this.#pass().catch((error: unknown) => {
      this.#notify(error); // once per failed pass, however many wakes joined it
      throw error;
    });
    this.#running = passing.finally(() => {
      this.#running = undefined;
      if (this.#again && !this.#stopped) this.wake(); // a wake that came after the pass's last claim
    });
    return this.#running;
  }

  /**
   * Claims and delivers batches until a claim comes back empty with nothing in flight, `depth` batches at most.
   * Pipelining keeps per-aggregate order because the outbox hands out no later row of an aggregate while an earlier
   * one is unsent, and a claimed row is unsent until its batch marks it. So an empty claim only ends the pass once
   * nothing is in flight: a batch being marked may free the next row of its aggregates.
   */
  async #pass(): Promise<void> {
    const pass: PassState = { inFlight: new Set(), settles: new Set(), busFailed: false, outboxError: undefined };
    try {
      while (!this.#stopped && !pass.outboxError) {
        if (pass.busFailed) {
          // Let the other batches settle (their rows released or marked), then wait with nothing claimed.
          await Promise.all(pass.inFlight);
          await this.#backOff();
          pass.busFailed = false;
          continue;
        }
        // After a failure, one batch probes the bus until one goes through: an outage never holds two batches.
        if (pass.inFlight.size >= (this.#delay === 0 ? this.#depth : 1)) {
          await Promise.race(pass.inFlight);
          continue;
        }
        if (this.#busState().blocked) {
          await this.#whileBlocked(pass.settles);
          continue;
        }
        this.#again = false;
        const batch = await this.outbox.claim(this.#batchSize);
        if (batch.length === 0) {
          if (pass.inFlight.size === 0) break;
          await Promise.race(pass.inFlight);
        } else if (this.#stopped || pass.busFailed || pass.outboxError || this.#busState().blocked) {
          // Claimed ahead while stopping, failing or blocked: hand the rows back rather than publish them now.
          await this.outbox.release(batch.map((m) => m.id));
        } else this.#launch(pass, batch);
      }
    } finally {
      await Promise.all(pass.inFlight); // stop() and a failed claim wait for every batch in flight
    }
    if (pass.outboxError) throw pass.outboxError.cause;
  }

  /** Delivers a batch in the background of `pass`, noting how it went. */
  #launch(pass: PassState, batch: readonly OutboxMessage[]): void {
    const settled = this.#deliver(batch)
      .then(
        (failed) => {
          if (failed) pass.busFailed = true;
          else this.#delay = 0;
        },
        (cause: unknown) => {
          pass.outboxError ??= { cause };
        },
      )
      .finally(() => {
        pass.inFlight.delete(settled);
        for (const settle of pass.settles) settle();
      });
    pass.inFlight.add(settled);
  }

  /** Publishes one claimed batch and settles every row of it; true when the bus failed some of it. */
  async #deliver(batch: readonly OutboxMessage[]): Promise<boolean> {
    const { logger } = this.options;
    let report: PublishReport;
    const traced = this.options.telemetry?.publishing?.(batch, this.bus);
    try {
      report = await this.bus.publish(traced?.batch ?? batch);
      traced?.end(report);
      if (this.#outageSince)
        logger?.info('relay: the bus is reachable again; publishing', { since: this.#outageSince });
      this.#outageSince = undefined;
    } catch (error) {
      traced?.end(undefined, error);
      if (!this.#outageSince) {
        this.#outageSince = new Date().toISOString();
        logger?.warn('relay: the bus is unreachable; rows stay in the outbox, backing off', { error });
      }
      this.#notify(error);
      await this.outbox.release(batch.map((m) => m.id)); // unreachable: no fault of the rows, no attempt counted
      return true;
    }
    return this.#settle(batch, report);
  }

  /**
   * Marks what the broker confirmed sent; unanswered rows go back untouched, nacked ones count an attempt (parked
   * once they reach maxAttempts, or at once when the failure is permanent). True when the bus failed some of it.
   */
  async #settle(batch: readonly OutboxMessage[], report: PublishReport): Promise<boolean> {
    if (report.sent.length > 0) await this.outbox.markSent(report.sent);
    const unconfirmed = report.unconfirmed ?? [];
    if (unconfirmed.length > 0) await this.outbox.release(unconfirmed);
    const byId = report.failed.length > 0 ? new Map(batch.map((m) => [m.id, m])) : undefined;
    for (const f of report.failed) {
      const message = byId?.get(f.id);
      const tries = (message?.attempts ?? 0) + 1;
      const park = f.permanent || tries >= this.#maxAttempts;
      await this.outbox.markFailed(f.id, f.error, park);
      if (park) {
        this.options.logger?.error(
          'relay: parked a message its publishes failed for; retry it with usecasecore outbox retry',
          { messageId: f.id, type: message?.type, attempts: tries, error: f.error },
        );
      }
    }
    return report.failed.length > 0 || unconfirmed.length > 0;
  }

  /** Waits until `arm`'s triggers call `resume` (or stop() does); `arm` returns how to remove them. */
  async #waitFor(arm: (resume: () => void) => () => void): Promise<void> {
    let disarm: (() => void) | undefined;
    await new Promise<void>((resolve) => {
      this.#resumeNow = resolve;
      disarm = arm(resolve);
    });
    disarm?.();
    this.#resumeNow = undefined;
  }

  #backOff(): Promise<void> {
    const [first, max] = this.#backoff;
    this.#delay = Math.min(this.#delay === 0 ? first : this.#delay * 2, max);
    return this.#waitFor((resume) => {
      const timer = setTimeout(resume, this.#delay);
      return () => clearTimeout(timer);
    });
  }

  /**
   * Waits while the bus is blocked: until it lets go, or a batch in flight settles (`settles` hears that: its
   * connection closed, say), or stop(). No attempt is counted and no error reported: the broker asked us to wait.
   */
  async #whileBlocked(settles: Set<() => void>): Promise<void> {
    const state = this.#busState();
    const reason = state.blocked ? state.reason : undefined;
    // Once per blocked spell: this wait also ends each time a batch in flight settles while the bus stays blocked.
    if (!this.#blockedSince) {
      this.#blockedSince = new Date().toISOString();
      this.options.logger?.warn('relay: the broker blocks publishing; waiting, nothing is lost', { reason });
    }
    await this.#waitFor((resume) => {
      const off = this.bus.onStateChange?.((state) => {
        if (!state.blocked) resume();
      });
      // A bus that has state() but no onStateChange is asked again after a short wait.
      const timer = off ? undefined : setTimeout(resume, this.#backoff[0]);
      settles.add(resume);
      if (!this.#busState().blocked) resume(); // it let go before we listened
      return () => {
        off?.();
        clearTimeout(timer);
        settles.delete(resume);
      };
    });
    if (!this.#busState().blocked) {
      this.options.logger?.info('relay: the broker takes publishes again', { reason, since: this.#blockedSince });
      this.#blockedSince = undefined;
    }
  }

  #busState(): BusState {
    return this.bus.state?.() ?? { blocked: false };
  }

  #notify(error: unknown): void {
    try {
      this.options.onError?.(error);
    } catch {
      // a failing listener must not stop the relay
    }
  }

  /** What drain() says when it gives up: how many are left and, when the broker pushes back, why and what to do. */
  async #undrained(): Promise<string> {
    const pending = `${await this.outbox.pending()} messages pending`;
    const state = this.#busState();
    if (!state.blocked) return pending;
    return (
      `${pending}; the broker has blocked publishing since ${state.since} (${state.reason}). Nothing is lost: ` +
      'the relay resumes when the broker clears its resource alarm (rabbitmqctl status lists alarms; free memory ' +
      'or disk, or let consumers drain the queues).'
    );
  }
}

/**
 * Binds `TOKENS.Relay` (a singleton) to a relay over the container's Outbox and the bus bound under `bus`, with the
 * container's Telemetry and Logger: the bus modules' part (memoryModule(), amqpModule()). `withLogger` hears that
 * Logger once, when the relay is made (every mediator resolves it, as a port).
 * @internal
 */
export function bindRelay(
  bind: ContainerModuleLoadOptions['bind'],
  bus: ServiceIdentifier<MessageBus>,
  options: RelayOptions = {},
  withLogger?: (logger: Logger) => void,
): void {
  bind(TOKENS.Relay)
    .toResolvedValue(
      (outbox: Outbox, publisher: MessageBus, telemetry: MessagingTelemetry | undefined, bound: Logger | undefined) => {
        const logger = bound ?? defaultLogger;
        withLogger?.(logger);
        return createRelay(outbox, publisher, { telemetry, logger, ...options });
      },
      [
        TOKENS.Outbox,
        bus,
        { serviceIdentifier: TOKENS.Telemetry, optional: true },
        { serviceIdentifier: TOKENS.Logger, optional: true },
      ],
    )
    .inSingletonScope();
}
