// Retention: removes sent outbox messages, old inbox records, expired idempotency records, settled jobs and ended
// processes, on a timer.
import type { Container } from 'inversify';
import { UseCaseError } from '../core/errors.js';
import type { IdempotencyStore, Inbox, JobStore, Outbox, ProcessStore } from '../core/ports.js';
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
  /**
   * Deletes processes that ended `completed` or `compensated` longer ago than this (ms), with their steps. Running
   * and failed ones (an operator's to retry) are never deleted.
   */
  readonly processesMs?: number;
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
  readonly processes?: Pick<ProcessStore, 'purge'> | undefined;
}

/** How many records one run removed, per port. */
export type RetentionCounts = { readonly [P in keyof RetentionPorts]-?: number };

/**
 * Each part of retention: its option, its port, and the purge it runs. The one place a part is decided; `retention()`
 * and its errors read it.
 */
const PARTS = [
  {
    option: 'outboxSentMs',
    port: 'outbox',
    needs: 'an Outbox with purgeSent()',
    purge: (p, ms) => p.outbox?.purgeSent?.bind(p.outbox, ms),
  },
  {
    option: 'inboxMs',
    port: 'inbox',
    needs: 'an Inbox with purge()',
    purge: (p, ms) => p.inbox?.purge?.bind(p.inbox, ms),
  },
  {
    option: 'idempotency',
    port: 'idempotency',
    needs: 'an IdempotencyStore',
    purge: (p) => p.idempotency?.reap.bind(p.idempotency),
  },
  {
    option: 'jobsMs',
    port: 'jobs',
    needs: 'a JobStore with purge()',
    purge: (p, ms) => p.jobs?.purge?.bind(p.jobs, ms),
  },
  {
    option: 'processesMs',
    port: 'processes',
    needs: 'a ProcessStore with purge()',
    purge: (p, ms) => p.processes?.purge?.bind(p.processes, ms),
  },
] as const satisfies ReadonlyArray<{
  readonly option: keyof RetentionOptions;
  readonly port: keyof RetentionPorts;
  readonly needs: string;
  readonly purge: (ports: RetentionPorts, ms: number) => (() => Promise<number>) | undefined;
}>;

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
  for (const part of PARTS) {
    const value = options[part.option];
    if (value === undefined || value === false) continue;
    const purge = part.purge(ports, typeof value === 'number' ? duration(part.option, value) : 0);
    if (!purge) throw missing(part.option, part.needs);
    tasks.push([part.port, purge]);
  }
  if (tasks.length === 0) {
    throw new UseCaseError(
      'misuse',
      `retention() has nothing to do — set ${PARTS.map((p) => p.option).join(', ')} (idempotency: true)`,
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
    const counts = Object.fromEntries(PARTS.map((p) => [p.port, 0])) as Record<keyof RetentionCounts, number>;
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
    processes: container.get<ProcessStore>(TOKENS.ProcessStore, { optional: true }),
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
