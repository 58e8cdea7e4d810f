// Retention: removes sent outbox messages, old inbox records, expired idempotency records and settled jobs, on a timer.
import type { Container } from 'inversify';
import { UseCaseError } from '../core/errors.js';
import type { IdempotencyStore, Inbox, JobStore, Outbox } from '../core/ports.js';
import { loggerOf } from '../core/logger.js';
import { TOKENS } from '../core/tokens.js';
import { every } from './timer.js';

/** What retention removes, and how often. Each part is off unless set. */
export interface RetentionOptions {
  /** Deletes sent outbox messages sent longer ago than this (ms). Unsent and parked ones are never deleted. */
  readonly outboxSentMs?: number;
  /** Forgets inbox records older than this (ms). Keep them longer than the broker can redeliver a message. */
  readonly inboxMs?: number;
  /** Deletes expired idempotency records and abandoned claims (`IdempotencyStore.reap()`). */
  readonly idempotency?: boolean;
  /** Deletes the records of jobs settled longer ago than this (ms). Queued and running jobs are never deleted. */
  readonly jobsMs?: number;
  /** How often the timer runs. Default 1 hour. */
  readonly everyMs?: number;
  /** Hears the failure of a timed run (the next tick tries again). Default: the container's Logger. */
  readonly onError?: (error: unknown) => void;
}

/** The ports retention maintains (a container's bound ones, or your own). */
export interface RetentionPorts {
  readonly outbox?: Pick<Outbox, 'purgeSent'> | undefined;
  readonly inbox?: Pick<Inbox, 'purge'> | undefined;
  readonly idempotency?: Pick<IdempotencyStore, 'reap'> | undefined;
  readonly jobs?: Pick<JobStore, 'purge'> | undefined;
}

/** How many records one run removed, per port. */
export interface RetentionCounts {
  readonly outbox: number;
  readonly inbox: number;
  readonly idempotency: number;
  readonly jobs: number;
}

/** A running retention schedule. */
export interface Retention {
  /**
   * Runs every configured purge now, one after the other; rejects (after trying them all) if one failed. A run
   * already under way (timed, or another runOnce) is joined: its counts are returned, no second run starts.
   */
  runOnce(): Promise<RetentionCounts>;
  /** Stops the timer and a run under way after its current purge; resolves when nothing runs any more. */
  stop(): Promise<void>;
}

type Task = readonly [port: keyof RetentionCounts, run: () => Promise<number>];

/**
 * Purges on a timer (unref'd: it never keeps the process alive) the ports of a container or the ones given.
 * Throws `UseCaseError('missing_port')` when a part is turned on but its port (or its maintenance method) is missing.
 * @example
 * const cleanup = retention(container, { outboxSentMs: 7 * DAY, inboxMs: 30 * DAY, idempotency: true, everyMs: HOUR });
 * // on shutdown, before closing the database: await cleanup.stop();
 */
export function retention(source: Container | RetentionPorts, options: RetentionOptions): Retention {
  const ports = portsOf(source);
  const logger = loggerOf(source);
  const { everyMs = 3_600_000, onError = (error: unknown) => logger.error('retention failed; retrying', { error }) } =
    options;
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
  if (options.jobsMs !== undefined) {
    const ms = duration('jobsMs', options.jobsMs),
      jobs = ports.jobs;
    if (!jobs?.purge) throw missing('jobsMs', 'a JobStore with purge()');
    tasks.push(['jobs', () => jobs.purge!(ms)]);
  }
  if (tasks.length === 0) {
    throw new UseCaseError(
      'misuse',
      'retention() has nothing to do — set outboxSentMs, inboxMs, jobsMs or idempotency: true',
    );
  }
  duration('everyMs', everyMs);

  let current: Promise<RetentionCounts> | undefined;
  let stopped = false;
  /** The one way a run starts (timer or runOnce): a run under way is joined, never overlapped. */
  function run(): Promise<RetentionCounts> {
    if (stopped) return Promise.reject(new UseCaseError('misuse', 'retention was stopped — make a new retention()'));
    current ??= runTasks().finally(() => {
      current = undefined;
    });
    return current;
  }
  async function runTasks(): Promise<RetentionCounts> {
    const counts = { outbox: 0, inbox: 0, idempotency: 0, jobs: 0 };
    const errors: unknown[] = [];
    for (const [port, purge] of tasks) {
      if (stopped) break; // stop() waits for the task under way only
      try {
        counts[port] = await purge();
      } catch (error) {
        errors.push(error);
      }
    }
    if (errors.length === 1) throw errors[0];
    if (errors.length > 1) throw new AggregateError(errors, `retention: ${errors.length} purges failed`);
    return counts;
  }

  const stopTimer = every(everyMs, run, () => current !== undefined, onError); // a slow first purge is not overlapped
  return {
    runOnce: run,
    async stop() {
      stopped = true;
      stopTimer();
      await current?.catch(() => undefined);
    },
  };
}

function portsOf(source: Container | RetentionPorts): RetentionPorts {
  if (typeof (source as { get?: unknown }).get !== 'function') return source as RetentionPorts;
  const container = source as Container;
  return {
    outbox: container.get<Outbox>(TOKENS.Outbox, { optional: true }),
    inbox: container.get<Inbox>(TOKENS.Inbox, { optional: true }),
    idempotency: container.get<IdempotencyStore>(TOKENS.IdempotencyStore, { optional: true }),
    jobs: container.get<JobStore>(TOKENS.JobStore, { optional: true }),
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
