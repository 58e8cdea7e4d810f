// Retention: removes sent outbox messages, old inbox records and expired idempotency records, on a timer.
import type { Container } from 'inversify';
import { UseCaseError } from './errors.js';
import type { IdempotencyStore, Inbox, Outbox } from './ports.js';
import { TOKENS } from './tokens.js';

/** What retention removes, and how often. Each part is off unless set. */
export interface RetentionOptions {
  /** Deletes sent outbox messages sent longer ago than this (ms). Unsent and parked ones are never deleted. */
  readonly outboxSentMs?: number;
  /** Forgets inbox records older than this (ms). Keep them longer than the broker can redeliver a message. */
  readonly inboxMs?: number;
  /** Deletes expired idempotency records and abandoned claims (`IdempotencyStore.reap()`). */
  readonly idempotency?: boolean;
  /** How often the timer runs. Default 1 hour. */
  readonly everyMs?: number;
  /** Hears the failure of a timed run (the next tick tries again). Default: `console.error`. */
  readonly onError?: (error: unknown) => void;
}

/** The ports retention maintains (a container's bound ones, or your own). */
export interface RetentionPorts {
  readonly outbox?: Pick<Outbox, 'purgeSent'> | undefined;
  readonly inbox?: Pick<Inbox, 'purge'> | undefined;
  readonly idempotency?: Pick<IdempotencyStore, 'reap'> | undefined;
}

/** How many records one run removed, per port. */
export interface RetentionCounts {
  readonly outbox: number;
  readonly inbox: number;
  readonly idempotency: number;
}

/** A running retention schedule. */
export interface Retention {
  /** Runs every configured purge now, one after the other; rejects (after trying them all) if one failed. */
  runOnce(): Promise<RetentionCounts>;
  /** Stops the timer (a run under way finishes). */
  stop(): void;
}

type Task = readonly [port: keyof RetentionCounts, run: () => Promise<number>];

/**
 * Purges on a timer (unref'd: it never keeps the process alive) the ports of a container or the ones given.
 * Throws `UseCaseError('missing_port')` when a part is turned on but its port (or its maintenance method) is missing.
 * @example
 * const cleanup = retention(container, { outboxSentMs: 7 * DAY, inboxMs: 30 * DAY, idempotency: true, everyMs: HOUR });
 * // on shutdown: cleanup.stop();
 */
export function retention(source: Container | RetentionPorts, options: RetentionOptions): Retention {
  const ports = portsOf(source);
  const { everyMs = 3_600_000, onError = (error: unknown) => console.error('usecasecore retention:', error) } = options;
  const tasks: Task[] = [];
  if (options.outboxSentMs !== undefined) {
    const ms = duration('outboxSentMs', options.outboxSentMs),
      outbox = ports.outbox;
    if (!outbox?.purgeSent) throw missing('outboxSentMs', 'an Outbox with purgeSent()');
    tasks.push(['outbox', () => outbox.purgeSent!(ms)]);
  }
  if (options.inboxMs !== undefined) {
    const ms = duration('inboxMs', options.inboxMs),
      inbox = ports.inbox;
    if (!inbox?.purge) throw missing('inboxMs', 'an Inbox with purge()');
    tasks.push(['inbox', () => inbox.purge!(ms)]);
  }
  if (options.idempotency) {
    const store = ports.idempotency;
    if (!store) throw missing('idempotency', 'an IdempotencyStore');
    tasks.push(['idempotency', () => store.reap()]);
  }
  if (tasks.length === 0) {
    throw new UseCaseError('misuse', 'retention() has nothing to do — set outboxSentMs, inboxMs or idempotency: true');
  }
  duration('everyMs', everyMs);

  async function runOnce(): Promise<RetentionCounts> {
    const counts = { outbox: 0, inbox: 0, idempotency: 0 };
    const errors: unknown[] = [];
    for (const [port, run] of tasks) {
      try {
        counts[port] = await run();
      } catch (error) {
        errors.push(error);
      }
    }
    if (errors.length === 1) throw errors[0];
    if (errors.length > 1) throw new AggregateError(errors, `retention: ${errors.length} purges failed`);
    return counts;
  }

  let running = false;
  const timer = setInterval(() => {
    if (running) return; // a slow run (a large first purge) is never overlapped
    running = true;
    runOnce()
      .catch(onError)
      .finally(() => {
        running = false;
      });
  }, everyMs);
  timer.unref();
  return { runOnce, stop: () => clearInterval(timer) };
}

function portsOf(source: Container | RetentionPorts): RetentionPorts {
  if (typeof (source as { get?: unknown }).get !== 'function') return source as RetentionPorts;
  const container = source as Container;
  return {
    outbox: container.get<Outbox>(TOKENS.Outbox, { optional: true }),
    inbox: container.get<Inbox>(TOKENS.Inbox, { optional: true }),
    idempotency: container.get<IdempotencyStore>(TOKENS.IdempotencyStore, { optional: true }),
  };
}

function duration(name: string, ms: number): number {
  if (Number.isFinite(ms) && ms >= 0) return ms;
  throw new UseCaseError('misuse', `retention({ ${name} }) must be a number of milliseconds ≥ 0, got ${ms}`);
}

function missing(option: string, what: string): UseCaseError {
  return new UseCaseError(
    'missing_port',
    `retention({ ${option} }) needs ${what} — bind one (memoryModule(), knexModule()) or leave ${option} out`,
  );
}
