// The audit sealer: chains committed audit records into their tenants' hash chains, on a timer.
import type { Container } from 'inversify';
import { UseCaseError } from '../core/errors.js';
import { loggerOf } from '../core/logger.js';
import type { AuditStore } from '../core/ports.js';
import { TOKENS } from '../core/tokens.js';
import { every } from '../ops/timer.js';

/** How often the sealer runs, and where its failures go. */
export interface AuditSealerOptions {
  /** Time between runs (ms). Default 200: a record is sealed well within a second of its commit. */
  readonly everyMs?: number;
  /** Hears the failure of a timed run (the next tick tries again). Default: the container's Logger. */
  readonly onError?: (error: unknown) => void;
}

/** A running sealer. */
export interface AuditSealer {
  /**
   * Seals now and resolves with how many records it chained. Everything committed before the call is sealed when
   * it resolves (unless a transaction older than those records is still open): a run under way is followed by one
   * more, shared by every call made meanwhile.
   */
  sealOnce(): Promise<number>;
  /** Stops the timer; resolves when no run is under way any more. */
  stop(): Promise<void>;
}

/**
 * Runs `AuditStore.seal()` on a timer (unref'd: it never keeps the process alive); runs never overlap. A store that
 * chains at once (no `seal`, or the memory store) makes it a no-op. Throws `UseCaseError('missing_port')` when the
 * container binds no AuditStore.
 * @example
 * const sealer = auditSealer(container, { everyMs: 200 });
 * // on shutdown, before closing the database: await sealer.stop();
 */
export function auditSealer(
  source: Container | Pick<AuditStore, 'seal'>,
  options: AuditSealerOptions = {},
): AuditSealer {
  const store = storeOf(source);
  const logger = loggerOf(source);
  const { everyMs = 200, onError = (error: unknown) => logger.error('audit sealing failed; retrying', { error }) } =
    options;
  if (!Number.isFinite(everyMs) || everyMs <= 0) {
    throw new UseCaseError('misuse', `auditSealer({ everyMs }) must be a number of milliseconds > 0, got ${everyMs}`);
  }
  const seal = () => store.seal?.() ?? Promise.resolve(0);

  let running: Promise<number> | undefined, // the run under way
    queued: Promise<number> | undefined; // the run after it, shared by the calls made meanwhile
  let stopped = false;
  const start = (): Promise<number> =>
    (running = seal().finally(() => {
      running = undefined;
    }));
  function sealOnce(): Promise<number> {
    if (stopped) return Promise.reject(new UseCaseError('misuse', 'the audit sealer was stopped — make a new one'));
    if (!running) return start();
    return (queued ??= running
      .catch(() => 0)
      .then(() => {
        queued = undefined;
        return running ?? start(); // a run started since then began after this call too
      }));
  }

  const stopTimer = every(everyMs, sealOnce, () => running !== undefined, onError);
  return {
    sealOnce,
    async stop() {
      stopped = true;
      stopTimer();
      await Promise.all([running?.catch(() => 0), queued?.catch(() => 0)]);
    },
  };
}

function storeOf(source: Container | Pick<AuditStore, 'seal'>): Pick<AuditStore, 'seal'> {
  if (typeof (source as { get?: unknown }).get !== 'function') return source as Pick<AuditStore, 'seal'>;
  const store = (source as Container).get<AuditStore>(TOKENS.AuditStore, { optional: true });
  if (store) return store;
  throw new UseCaseError(
    'missing_port',
    'auditSealer(container) needs an AuditStore — bind one (memoryModule(), knexModule()) or pass the store itself',
  );
}
