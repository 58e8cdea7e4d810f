// `npm start`: serves the sample on PORT (default 3000); on SIGTERM or SIGINT it shuts down gracefully and exits
// within SHUTDOWN_DEADLINE_MS. Adapters and names come from the environment (see samples/backend.ts); retention
// from RETENTION_OUTBOX_SENT_MS (default 7 days), RETENTION_INBOX_MS, RETENTION_JOBS_MS, RETENTION_PROCESSES_MS
// (30 days each), RETENTION_EVERY_MS (1 hour) and IDEMPOTENCY_TTL_MS (24 hours), all in ms (a soak run shortens
// them to see the tables stay flat); tracing from OTEL_TRACES_EXPORTER (see samples/telemetry.ts).
import type { AddressInfo } from 'node:net';
import { TOKENS } from '../lib/core/index.js';
import { auditSealer } from '../lib/audit/index.js';
import { retention } from '../lib/ops/index.js';
import type { MessageSource, RunningRelay } from '../lib/messaging/index.js';
import { FEATURES, createApp, createHttpServer } from './app.js';
import { backendFromEnv } from './backend.js';
import { startConsumers } from './consumers.js';
import { gracefulClose } from './http/graceful.js';
import { startTelemetry } from './telemetry.js';

/** The process exits within this after SIGTERM/SIGINT: with 0 when everything closed, else 1. */
const SHUTDOWN_DEADLINE_MS = 10_000;
// The steps' waits, each also capped by what is left of the deadline (minus a second to close the pool):
/** Requests already received, and consumer handlers under way, finish within this or are cut. */
const GRACE_MS = 5_000;
/** Sends whose connection was cut run on to their commit or rollback within this. */
const SETTLE_MS = 2_000;
/** The relay publishes what is committed within this (the rest stays in the outbox for the next relay). */
const RELAY_DRAIN_MS = 1_500;
/** The relay settles its batches in flight within this; the broker closes the connection within BUS_CLOSE_MS. */
const RELAY_STOP_MS = 1_500;
const BUS_CLOSE_MS = 1_000;
const HOUR = 3_600_000,
  DAY = 24 * HOUR;

const port = Number(process.env.PORT ?? 3000);
if (!Number.isInteger(port) || port < 0 || port > 65_535) {
  console.error(`PORT must be a port number (0–65535), got "${process.env.PORT}"`);
  process.exit(1);
}
/** A duration variable in ms: a whole number ≥ 1, or the default when unset. */
function ms(name: string, fallback: number): number {
  const text = process.env[name];
  if (text === undefined || text === '') return fallback;
  const value = Number(text);
  if (Number.isInteger(value) && value >= 1) return value;
  console.error(`${name} must be a whole number of milliseconds ≥ 1, got "${text}"`);
  process.exit(1);
}

const telemetry = startTelemetry(process.env); // before the mediator is built, so its first send is traced
const backend = await backendFromEnv(process.env);
const { app, container, mediator, sends, listening } = createApp(backend.container, {
  idempotencyTtlMs: ms('IDEMPOTENCY_TTL_MS', DAY),
  ...(process.env.PSP_URL ? { pspUrl: process.env.PSP_URL } : {}),
});
const relay = container.get<RunningRelay>(TOKENS.Relay);
relay.start(1_000); // woken after every commit; the poll also picks up rows an earlier run left unsent
// Sent events kept a week (to look into), inbox records a month (longer than any redelivery), settled jobs and ended
// processes a month (a keyed job's record stays: its key keeps answering), expired idempotency records reaped, hourly.
const cleanup = retention(container, {
  outboxSentMs: ms('RETENTION_OUTBOX_SENT_MS', 7 * DAY),
  inboxMs: ms('RETENTION_INBOX_MS', 30 * DAY),
  jobsMs: ms('RETENTION_JOBS_MS', 30 * DAY),
  processesMs: ms('RETENTION_PROCESSES_MS', 30 * DAY),
  idempotency: true,
  everyMs: ms('RETENTION_EVERY_MS', HOUR),
});
// Audit records commit unchained; the sealer chains them into each tenant's hash chain within a second.
const sealer = auditSealer(container, { everyMs: 200 });
const consumers = startConsumers(FEATURES, mediator, container.get<MessageSource>(TOKENS.MessageSource), backend.queue);
const server = createHttpServer(app);
const closeHttp = gracefulClose(server);
server.listen(port, () => {
  const { port: bound } = server.address() as AddressInfo;
  listening(`http://127.0.0.1:${bound}`); // the stand-in payment provider is served here, under /psp
  console.log(`usecasecore sample on http://localhost:${bound} — ${backend.description}`);
  console.log(telemetry.description);
});

/**
 * Stops accepting connections and deliveries, lets the requests and handlers under way finish (cutting them after
 * GRACE_MS), waits for the sends still running, lets the relay publish what is committed (a batch it claimed is
 * published or released, never left leased), stops the timers and closes the broker connection (unacked deliveries
 * go back to the broker) and the pool. Then the process ends on its own; if something is still open a second later
 * (a broker that blocks the connection stops reading from it, so it never closes), it says what and exits anyway:
 * everything that matters is in the database by then. The deadline bounds the whole, exiting with 1.
 */
async function shutdown(signal: NodeJS.Signals): Promise<void> {
  const started = Date.now();
  console.log(`${signal} received, shutting down (at most ${SHUTDOWN_DEADLINE_MS / 1000} s)`);
  setTimeout(() => {
    console.error(
      `shutdown: not done after ${SHUTDOWN_DEADLINE_MS} ms, exiting with 1; still open: ` +
        `${process.getActiveResourcesInfo().join(', ')}; sends under way: ${sends.count}`,
    );
    process.exit(1);
  }, SHUTDOWN_DEADLINE_MS).unref();
  /** A wait of at most `cap` ms that still leaves a second before the deadline for closing the pool. */
  const upTo = (cap: number) => Math.max(0, Math.min(cap, started + SHUTDOWN_DEADLINE_MS - 1_000 - Date.now()));
  let clean = true;
  const step = async (what: string, work: () => Promise<unknown>) => {
    try {
      await work();
    } catch (error) {
      clean = false;
      console.error(`shutdown: ${what} failed:`, error);
    }
  };

  await step('stopping HTTP and consumers', async () => {
    const [http, consumed] = await Promise.all([closeHttp(upTo(GRACE_MS)), consumers.stop(upTo(GRACE_MS))]);
    if (http.cut > 0) console.log(`shutdown: cut ${http.cut} requests still unanswered after ${GRACE_MS} ms`);
    if (!consumed) console.log(`shutdown: consumer handlers still running after ${GRACE_MS} ms; left to the broker`);
  });
  await step('waiting for sends', async () => {
    if (!(await sends.settled(upTo(SETTLE_MS)))) throw new Error(`${sends.count} sends still running`);
  });
  // Publish what this process committed (bounded: another process, or the next start, publishes the rest).
  await relay
    .drain(upTo(RELAY_DRAIN_MS))
    .catch((error: Error) => console.log(`shutdown: ${error.message}; left for later`));
  await step('stopping the relay', async () => {
    if (await within(relay.stop(), upTo(RELAY_STOP_MS))) return;
    // A batch waits for confirms a blocked broker holds back: closing the connection ends the wait, and the relay
    // hands the batch back to the outbox (the database is still open) for the next relay to publish.
    console.log(`shutdown: the relay still waits for the broker after ${RELAY_STOP_MS} ms; closing the connection`);
    await within(backend.closeBus(), upTo(BUS_CLOSE_MS));
    if (!(await within(relay.stop(), upTo(RELAY_STOP_MS)))) throw new Error('the relay did not stop');
  });
  await step('stopping retention', () => cleanup.stop());
  await step('sealing the audit log', () => sealer.sealOnce().finally(() => sealer.stop()));
  await step('closing the broker connection', async () => {
    if (!(await within(backend.closeBus(), upTo(BUS_CLOSE_MS))))
      console.log(`shutdown: the broker did not close the connection within ${BUS_CLOSE_MS} ms; not waiting`);
  });
  await step('closing the pool', () => backend.closeDatabase());
  await step('flushing spans', () => telemetry.shutdown());
  console.log(`shutdown: ${clean ? 'complete' : 'finished with errors'} in ${Date.now() - started} ms`);
  process.exitCode = clean ? 0 : 1;
  setTimeout(() => {
    console.log(`shutdown: still open a second later: ${process.getActiveResourcesInfo().join(', ')}; exiting`);
    process.exit();
  }, 1_000).unref();
}

/** True when `work` resolves within `ms`, false when it is still running then; rejects with its error. */
async function within(work: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const done = await Promise.race([
    work.then(() => true),
    new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), ms);
    }),
  ]);
  clearTimeout(timer);
  return done;
}

let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const)
  process.on(signal, (received) => {
    if (!stopping) {
      stopping = true;
      void shutdown(received);
    } else {
      console.error(`${received} received again: exiting at once`);
      process.exit(1);
    }
  });

// Debug aid, off unless SAMPLE_STATS=1: SIGUSR2 prints one line `sample-stats {json}` with the memory after a full
// GC (when node runs with --expose-gc), for soak runs that watch for leaks, and `peakHeapUsed`: the most heapUsed
// seen (sampled every 10 ms, garbage included) since the previous report. No HTTP surface, nothing by default.
if (process.env.SAMPLE_STATS === '1') {
  let peakHeapUsed = process.memoryUsage().heapUsed;
  setInterval(() => {
    peakHeapUsed = Math.max(peakHeapUsed, process.memoryUsage().heapUsed);
  }, 10).unref();
  process.on('SIGUSR2', () => {
    const peak = Math.max(peakHeapUsed, process.memoryUsage().heapUsed);
    const gc = (globalThis as { gc?: () => void }).gc;
    gc?.();
    const { rss, heapUsed, external } = process.memoryUsage();
    peakHeapUsed = heapUsed;
    const stats = {
      pid: process.pid,
      at: new Date().toISOString(),
      afterGc: gc !== undefined,
      rss,
      heapUsed,
      peakHeapUsed: peak,
      external,
      sendsInFlight: sends.count,
      resources: process.getActiveResourcesInfo().length,
    };
    console.log(`sample-stats ${JSON.stringify(stats)}`);
  });
}
