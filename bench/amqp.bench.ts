// The outbox relay on Postgres + RabbitMQ: throughput against raw amqplib, and commit-to-confirm latency at a
// steady rate through the real pipeline; and one event with three @on subscribers, end to end.
//
//   npm run bench:amqp          # ~2–3 min, prints a Markdown report to stdout (progress on stderr)
//   BENCH_AMQP_ONLY=fanout npm run bench:amqp   # only the fan-out phase (~1 min)
//
// DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test), AMQP_URL (default amqp://guest:guest@127.0.0.1:5672).
// Knobs: BENCH_AMQP_ONLY (comma-separated phases: `throughput`, `latency`, `fanout`; default all three),
// BENCH_AMQP_N (20000 messages per throughput run), BENCH_AMQP_REPS (3), BENCH_AMQP_WARM_N (2000),
// BENCH_AMQP_RATE (500 msg/s), BENCH_AMQP_SECONDS (10 s measured) after BENCH_AMQP_WARM_SECONDS (2 s; also the
// fan-out latency's warm-up), BENCH_AMQP_STACK (`lean`: validation + unitOfWork + publish; `full`: recommendedStack;
// latency phase only), BENCH_AMQP_PIPELINE (the relay's batches in flight; default: the relay's; throughput rows),
// BENCH_AMQP_KEEP=1 (keep the schema and the broker objects).
// Fan-out: BENCH_AMQP_FANOUT_N (5000 events per throughput run), BENCH_AMQP_FANOUT_REPS (1),
// BENCH_AMQP_FANOUT_WARM_N (500), BENCH_AMQP_FANOUT_CONCURRENCY (16 producing sends in flight),
// BENCH_AMQP_FANOUT_POOL (10: the knex pool the producer, the relay and the subscribers share),
// BENCH_AMQP_FANOUT_RATE (100 events/s) for BENCH_AMQP_FANOUT_SECONDS (5 s measured).
//
// Everything lives in a fresh Postgres schema (`amqpbench_<random>`, migrate()) and in exchanges/queues named
// `ucc-bench-<random>.*` (the subscribers' queues: `ucc-bench-<random>.fanout.<Class>` with .retry and .dead); both
// are deleted at the end, also after a failure.
import 'reflect-metadata';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { connect, type ChannelModel, type ConfirmChannel } from 'amqplib';
import { Container, inject, injectable } from 'inversify';
import knex, { type Knex } from 'knex';
import * as v from 'valibot';
import { AmqpBus, AmqpConnection, AmqpSource, amqpModule } from '../adapters/amqp/index.js';
import { encode } from '../adapters/amqp/codec.js';
import { KnexOutbox, KnexUnitOfWork, knexModule, migrate, tables } from '../adapters/knex/index.js';
import {
  Command,
  Event,
  TOKENS,
  createMediator,
  handles,
  ok,
  on,
  type Context,
  type Handler,
  type Mediator,
  type Middleware,
} from '../lib/core/index.js';
import { createRelay, subscribe, type MessageSource, type Outbox, type RunningRelay } from '../lib/messaging/index.js';
import { queueNames } from '../lib/core/queues.js';
import { everyone, publish, recommendedStack, unitOfWork, validation } from '../middleware/index.js';
import {
  BlockedClock,
  TimedOutbox,
  benchTopology,
  cpuSince,
  cpuSnapshot,
  declareTopology,
  deleteTopology,
  makeMessages,
  ms,
  payloadOf,
  queueTypes,
  rate,
  sleep,
  summarize,
  withRetryAndDead,
  type CpuSnapshot,
  type PhaseTimes,
  type Summary,
} from './amqp-common.js';
import { BENCH_AMQP_URL, BENCH_DB_URL, check, envNumber } from './harness.js';
import { median } from './pg-common.js';

const env = envNumber;
const DB_URL = BENCH_DB_URL;
const AMQP_URL = BENCH_AMQP_URL;
const N = env('BENCH_AMQP_N', 20_000);
const REPS = env('BENCH_AMQP_REPS', 3);
const WARM_N = env('BENCH_AMQP_WARM_N', 2_000);
const RATE = env('BENCH_AMQP_RATE', 500);
const SECONDS = env('BENCH_AMQP_SECONDS', 10);
const WARM_SECONDS = env('BENCH_AMQP_WARM_SECONDS', 2);
const STACK = process.env.BENCH_AMQP_STACK === 'full' ? 'full' : 'lean';
const KEEP = env('BENCH_AMQP_KEEP', 0) !== 0;
const FANOUT_N = env('BENCH_AMQP_FANOUT_N', 5_000);
const FANOUT_REPS = env('BENCH_AMQP_FANOUT_REPS', 1);
const FANOUT_WARM_N = env('BENCH_AMQP_FANOUT_WARM_N', 500);
const FANOUT_CONCURRENCY = env('BENCH_AMQP_FANOUT_CONCURRENCY', 16);
/** The fan-out phase's own knex pool (producer, relay and subscribers share it, as in one service). */
const FANOUT_POOL = env('BENCH_AMQP_FANOUT_POOL', 10);
const FANOUT_RATE = env('BENCH_AMQP_FANOUT_RATE', 100);
const FANOUT_SECONDS = env('BENCH_AMQP_FANOUT_SECONDS', 5);
const PHASES = ['throughput', 'latency', 'fanout'] as const;
type Phase = (typeof PHASES)[number];
const ONLY = (process.env.BENCH_AMQP_ONLY ?? '')
  .split(',')
  .map((p) => p.trim())
  .filter(Boolean);
for (const p of ONLY)
  if (!(PHASES as readonly string[]).includes(p))
    throw new Error(`BENCH_AMQP_ONLY: unknown phase "${p}" (one or more of ${PHASES.join(', ')})`);
const runs = (phase: Phase) => ONLY.length === 0 || ONLY.includes(phase);
/** Batches the relay keeps in flight (`RelayOptions.pipeline`); unset: the relay's default. */
const PIPELINE = env('BENCH_AMQP_PIPELINE', 0) || undefined;
const PAYLOAD_BYTES = 200;
const RAW_BATCH = 100;
const RELAY_BATCHES = [100, 500] as const;
/** Targets, as ratios to raw-100: relay-100 ≥ 0.8×, relay-500 ≥ 1.0×. */
const TARGET_RATIO = { 100: 0.8, 500: 1.0 } as const;
const TARGET_P99_MS = 50;
const THROUGHPUT_TYPE = 'bench.throughput';
const LATENCY_TYPE = 'bench.emitted';
const FANOUT_TYPE = 'bench.fanout.paid';
/** The producer's send options (the actor travels in the event's headers to the subscribers' sends). */
const FANOUT_SEND = { actor: { id: 'bench' } } as const;

const log = (line: string) => process.stderr.write(`${line}\n`);
const started = performance.now();

// ---- the run's own database schema and broker objects ----------------------------------------------------------

const schema = `amqpbench_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
const T = tables({ schema });
const topology = benchTopology();
const Q_THROUGHPUT = topology.queue('throughput');
const Q_LATENCY = topology.queue('latency');

// ---- throughput ------------------------------------------------------------------------------------------------

type ThroughputId = 'raw-100' | 'relay-100' | 'relay-500' | 'raw-500';
interface ThroughputRow {
  readonly id: ThroughputId;
  readonly label: string;
  readonly batch: number;
  readonly relay: boolean;
}
const ROWS: readonly ThroughputRow[] = [
  {
    id: 'raw-100',
    label: 'raw amqplib: confirm channel, publish 100 → `await waitForConfirms()`, repeat',
    batch: RAW_BATCH,
    relay: false,
  },
  {
    id: 'relay-100',
    label: '`createRelay(new KnexOutbox(…), new AmqpBus(…), { batchSize: 100 })`',
    batch: 100,
    relay: true,
  },
  { id: 'relay-500', label: '`createRelay(…, { batchSize: 500 })`', batch: 500, relay: true },
  { id: 'raw-500', label: 'raw amqplib, batches of 500 (reference for the 500 row)', batch: 500, relay: false },
];
check(
  RELAY_BATCHES.every((b) => ROWS.some((r) => r.relay && r.batch === b)),
  'relay rows',
);

interface Trial {
  readonly msgPerSec: number;
  readonly elapsedMs: number;
  readonly phases?: PhaseTimes;
  readonly checks: string;
  readonly cpu: string;
}

interface Env {
  readonly db: Knex;
  readonly control: ConfirmChannel; // declarations, purges and counts
  readonly raw: ConfirmChannel; // the raw amqplib row's own connection and channel
  readonly bus: AmqpBus; // the relay rows' bus (one connection, as a relay process would keep)
  readonly outbox: KnexOutbox;
}

async function queueDepth(channel: ConfirmChannel, queue: string): Promise<number> {
  return (await channel.checkQueue(queue)).messageCount;
}

/** Raw amqplib: the same messages (encoded the same way) in batches of `batch`, waiting for the confirms of each. */
async function rawTrial(e: Env, n: number, batch: number): Promise<Trial> {
  const messages = makeMessages(n, THROUGHPUT_TYPE, PAYLOAD_BYTES);
  await e.control.purgeQueue(Q_THROUGHPUT);
  const cpu0 = cpuSnapshot(),
    t = performance.now();
  for (let i = 0; i < n; i += batch) {
    for (const message of messages.slice(i, i + batch)) {
      const { content, options } = encode(message);
      if (!e.raw.publish(topology.exchanges.events, message.type, content, { ...options, mandatory: false }))
        await new Promise((resolve) => e.raw.once('drain', resolve));
    }
    await e.raw.waitForConfirms();
  }
  const elapsedMs = performance.now() - t,
    cpu = coresSince(cpu0, elapsedMs);
  const depth = await queueDepth(e.control, Q_THROUGHPUT);
  check(depth === n, `raw: queue holds ${depth} messages, expected ${n}`);
  await e.control.purgeQueue(Q_THROUGHPUT);
  return { msgPerSec: (n / elapsedMs) * 1000, elapsedMs, cpu, checks: `queue ${depth}/${n}` };
}

/** Counts of the outbox table: unsent (not parked), sent, parked. */
async function outboxCounts(db: Knex): Promise<{ unsent: number; sent: number; parked: number; total: number }> {
  const { rows } = await db.raw(
    `SELECT count(*) FILTER (WHERE sent_at IS NULL AND parked_at IS NULL) unsent, count(*) FILTER (WHERE sent_at IS NOT NULL) sent,
            count(*) FILTER (WHERE parked_at IS NOT NULL) parked, count(*) total FROM ??`,
    [T.outbox],
  );
  const r = rows[0] as Record<string, string>;
  return { unsent: Number(r.unsent), sent: Number(r.sent), parked: Number(r.parked), total: Number(r.total) };
}

/** N committed rows (the library's own `add`, autocommit chunks of 1,000) → one relay → all confirmed, marked sent. */
async function relayTrial(e: Env, n: number, batchSize: number): Promise<Trial> {
  await e.db.raw('TRUNCATE ??', [T.outbox]);
  const messages = makeMessages(n, THROUGHPUT_TYPE, PAYLOAD_BYTES);
  for (let i = 0; i < n; i += 1_000) await e.outbox.add(messages.slice(i, i + 1_000));
  await e.db.raw('ANALYZE ??', [T.outbox]); // as autovacuum would have by now on a live table
  await e.control.purgeQueue(Q_THROUGHPUT);
  const timed = new TimedOutbox(e.outbox);
  const relay = createRelay(timed, e.bus, PIPELINE ? { batchSize, pipeline: PIPELINE } : { batchSize });
  const cpu0 = cpuSnapshot(),
    t = performance.now();
  await relay.drain(120_000);
  const elapsedMs = performance.now() - t,
    cpu = coresSince(cpu0, elapsedMs);
  await relay.stop();
  const counts = await outboxCounts(e.db);
  const depth = await queueDepth(e.control, Q_THROUGHPUT);
  check(
    counts.unsent === 0 && counts.parked === 0 && counts.sent === n,
    `relay: outbox ${JSON.stringify(counts)}, expected ${n} sent`,
  );
  check(depth === n, `relay: queue holds ${depth} messages, expected ${n}`);
  await e.control.purgeQueue(Q_THROUGHPUT);
  return {
    msgPerSec: (n / elapsedMs) * 1000,
    elapsedMs,
    phases: timed.phases,
    cpu,
    checks: `queue ${depth}/${n}; outbox sent ${counts.sent}, unsent ${counts.unsent}`,
  };
}

function runRow(e: Env, row: ThroughputRow, n: number): Promise<Trial> {
  return row.relay ? relayTrial(e, n, row.batch) : rawTrial(e, n, row.batch);
}

/** Cores busy (node + postgres + rabbitmq) since `before`, over `elapsedMs` of wall time. */
function coresSince(before: CpuSnapshot, elapsedMs: number): string {
  const used = cpuSince(before),
    wallUs = elapsedMs * 1000;
  const cores = (k: 'node' | 'pg' | 'rabbit') => (used[k] / wallUs).toFixed(2);
  return `${cores('node')} + ${cores('pg')} + ${cores('rabbit')}`;
}

// ---- latency through the real pipeline -----------------------------------------------------------------------

class BenchEmit extends Command(v.object({ seq: v.number() }))<{ seq: number }> {}
class BenchEmitted extends Event(v.object({ seq: v.number(), pad: v.string() })) {
  static readonly type = LATENCY_TYPE;
}

/** Commit times (afterCommit hook) by seq, in performance.now() ms. */
const commitAt: number[] = [];

@handles(BenchEmit)
@injectable()
class BenchEmitHandler implements Handler<BenchEmit> {
  handle(cmd: BenchEmit, ctx: Context<BenchEmit>) {
    const { seq } = cmd;
    ctx.publish(new BenchEmitted(payloadOf(seq, PAYLOAD_BYTES)));
    ctx.afterCommit(() => {
      commitAt[seq] = performance.now();
    });
    return ok({ seq });
  }
}

interface LatencyResult {
  readonly fromCommit: Summary;
  readonly fromCommitToMarked: Summary;
  readonly fromCommitToDelivered: Summary;
  readonly fromResolved: Summary;
  readonly sendDuration: Summary;
  readonly scheduledRate: number;
  readonly achievedRate: number;
  readonly confirmedRate: number;
  readonly measured: number;
  readonly total: number;
  readonly phases: PhaseTimes;
  readonly checks: string;
  readonly over: number;
}

async function latencyRun(db: Knex, control: ConfirmChannel): Promise<LatencyResult> {
  await db.raw('TRUNCATE ??', [T.outbox]);
  await control.purgeQueue(Q_LATENCY);
  const seqOf = new Map<string, number>();
  const confirmedAt = new Map<string, number>();
  const markedAt = new Map<string, number>();
  const deliveredAt = new Map<string, number>();

  const container = new Container();
  container.load(knexModule({ knex: db, schema }), amqpModule({ url: AMQP_URL, exchanges: topology.exchanges }));
  const timed = new TimedOutbox(container.get(KnexOutbox), {
    added: (messages) => {
      for (const m of messages) seqOf.set(m.id, (m.payload as { seq: number }).seq);
    },
    confirmed: (ids, at) => {
      for (const id of ids) confirmedAt.set(id, at);
    },
    marked: (ids, at) => {
      for (const id of ids) markedAt.set(id, at);
    },
  });
  // The module's relay resolves TOKENS.Outbox lazily, so it (and the publish middleware) get the timed pass-through.
  container.rebind<Outbox>(TOKENS.Outbox).toConstantValue(timed);
  const middleware: Middleware[] =
    STACK === 'full' ? recommendedStack({ rules: [everyone(BenchEmit)] }) : [validation(), unitOfWork(), publish()];
  const mediator = createMediator(container, { handlers: [BenchEmitHandler], middleware });
  const relay = container.get<RunningRelay>(TOKENS.Relay);
  relay.start(1_000); // as a deployment would: woken after each commit, polling as a fallback

  // A consumer of the queue on a connection of its own (diagnostic: RabbitMQ may deliver before it confirms).
  const consumerModel = await connect(AMQP_URL);
  const consumerChannel = await consumerModel.createChannel();
  await consumerChannel.prefetch(1_000);
  await consumerChannel.consume(Q_LATENCY, (msg) => {
    if (!msg) return;
    deliveredAt.set(String(msg.properties.messageId), performance.now());
    consumerChannel.ack(msg);
  });

  const total = Math.round(RATE * (WARM_SECONDS + SECONDS));
  const warm = Math.round(RATE * WARM_SECONDS);
  const interval = 1_000 / RATE;
  const resolvedAt: number[] = [],
    sentAt: number[] = [];
  const sends: Array<Promise<void>> = [];
  let failures = 0,
    firstFailure = '';
  const t0 = performance.now();
  // Open loop: message i is due at t0 + i·interval; each tick fires every message that is due (never waits for a send).
  for (let i = 0; i < total;) {
    const due = Math.min(total, Math.floor((performance.now() - t0) / interval) + 1);
    for (; i < due; i++) {
      const seq = i;
      sentAt[seq] = performance.now();
      sends.push(
        mediator.send(BenchEmit.from({ seq })).then((result) => {
          resolvedAt[seq] = performance.now();
          if (!result.ok) {
            failures++;
            firstFailure ||= JSON.stringify(result);
          }
        }),
      );
    }
    if (i < total) await sleep(Math.max(1, t0 + i * interval - performance.now()));
  }
  const producedIn = performance.now() - t0;
  await Promise.all(sends);
  await relay.drain(30_000);
  for (const deadline = performance.now() + 10_000; deliveredAt.size < total && performance.now() < deadline;)
    await sleep(20);
  await relay.stop();
  await consumerModel.close();
  await container.get(AmqpConnection).close();

  check(failures === 0, `latency: ${failures} sends failed, first ${firstFailure}`);
  const counts = await outboxCounts(db);
  check(
    counts.total === total && counts.sent === total && counts.unsent === 0 && counts.parked === 0,
    `latency: outbox ${JSON.stringify(counts)}, expected ${total} sent`,
  );
  check(
    seqOf.size === total && confirmedAt.size === total,
    `latency: ${seqOf.size} added, ${confirmedAt.size} confirmed, expected ${total}`,
  );
  check(deliveredAt.size === total, `latency: ${deliveredAt.size} delivered, expected ${total}`);
  check(
    [...deliveredAt.keys()].every((id) => seqOf.has(id)),
    'latency: a delivered message id the outbox never saw',
  );

  const fromCommit: number[] = [],
    toMarked: number[] = [],
    toDelivered: number[] = [],
    fromResolved: number[] = [],
    sendDuration: number[] = [];
  let first = Infinity,
    last = -Infinity,
    firstConfirm = Infinity,
    lastConfirm = -Infinity;
  for (const [id, seq] of seqOf) {
    if (seq < warm) continue;
    const committed = commitAt[seq]!,
      confirmed = confirmedAt.get(id)!;
    fromCommit.push(confirmed - committed);
    toMarked.push(markedAt.get(id)! - committed);
    toDelivered.push(deliveredAt.get(id)! - committed);
    fromResolved.push(confirmed - resolvedAt[seq]!);
    sendDuration.push(resolvedAt[seq]! - sentAt[seq]!);
    first = Math.min(first, committed);
    last = Math.max(last, committed);
    firstConfirm = Math.min(firstConfirm, confirmed);
    lastConfirm = Math.max(lastConfirm, confirmed);
  }
  const measured = total - warm;
  return {
    fromCommit: summarize(fromCommit),
    fromCommitToMarked: summarize(toMarked),
    fromCommitToDelivered: summarize(toDelivered),
    fromResolved: summarize(fromResolved),
    sendDuration: summarize(sendDuration),
    scheduledRate: RATE,
    achievedRate: ((measured - 1) / (last - first)) * 1000,
    confirmedRate: ((measured - 1) / (lastConfirm - firstConfirm)) * 1000,
    measured,
    total,
    phases: timed.phases,
    over: fromCommit.filter((x) => x >= TARGET_P99_MS).length,
    checks:
      `${total} sends ok (${warm} warm-up + ${measured} measured); outbox ${counts.sent} sent, ${counts.unsent} unsent, ${counts.parked} parked; ` +
      `${deliveredAt.size} distinct ids delivered to the bound queue; produced in ${(producedIn / 1000).toFixed(2)} s`,
  };
}

// ---- fan-out: one event, three @on subscribers, end to end ------------------------------------------------------

class FanoutPay extends Command(v.object({ seq: v.number() }))<{ seq: number }> {}
class FanoutPaid extends Event(v.object({ seq: v.number(), pad: v.string() })) {
  static readonly type = FANOUT_TYPE;
}

/** The subscribers' effect: one row per (subscriber, event), written in the delivery's transaction. */
const FANOUT_TABLE = `${schema}.bench_fanout`;
/** The service name `subscribe()` puts in front of each queue: `ucc-bench-<random>.fanout.<ClassName>`. */
const FANOUT_SERVICE = topology.queue('fanout');

/** Times (performance.now() ms) by seq: the producing send's commit, and each subscriber's commit. */
const fan = {
  producedAt: [] as number[],
  committedAt: new Map<string, number[]>(),
  /** Handler runs started (attempts included) and committed. */
  runs: 0,
  commits: 0,
};

@handles(FanoutPay)
@injectable()
class FanoutPayHandler implements Handler<FanoutPay> {
  handle(cmd: FanoutPay, ctx: Context<FanoutPay>) {
    const { seq } = cmd;
    ctx.publish(new FanoutPaid(payloadOf(seq, PAYLOAD_BYTES)));
    ctx.afterCommit(() => {
      fan.producedAt[seq] = performance.now();
    });
    return ok({ seq });
  }
}

/** What each subscriber does: one INSERT through the unit of work's transaction, its commit time recorded. */
async function fanoutEffect(who: string, uow: KnexUnitOfWork, event: FanoutPaid, ctx: Context<FanoutPaid>) {
  fan.runs++;
  await (await uow.db())(FANOUT_TABLE).insert({ subscriber: who, seq: event.seq });
  ctx.afterCommit(() => {
    fan.committedAt.get(who)![event.seq] = performance.now();
    fan.commits++;
  });
  return ok(undefined);
}

/** A subscriber of FanoutPaid named `name` (its queue's name, through `static subscription`). */
function fanoutSubscriber(name: string) {
  @on(FanoutPaid)
  @injectable()
  class Subscriber implements Handler<FanoutPaid> {
    static readonly subscription = name;
    constructor(@inject(KnexUnitOfWork) private readonly uow: KnexUnitOfWork) {}
    handle(event: FanoutPaid, ctx: Context<FanoutPaid>) {
      return fanoutEffect(name, this.uow, event, ctx);
    }
  }
  return Subscriber;
}

const SUBSCRIBERS = ['SendReceipt', 'PostToLedger', 'UpdateSalesStats'].map(fanoutSubscriber);
const SUBSCRIBER_NAMES = SUBSCRIBERS.map((s) => queueNames().subscriber('', s).slice(1));
/** Every queue `subscribe()` declares for them (deleted at the end). */
const FANOUT_QUEUES = withRetryAndDead(SUBSCRIBER_NAMES.map((name) => `${FANOUT_SERVICE}.${name}`));

interface FanoutTrial {
  readonly events: number;
  readonly elapsedMs: number;
  readonly eventsPerSec: number;
  readonly runsPerSec: number;
  /** Rate of the producing sends (committed), and when the relay had confirmed the last event (ms after start). */
  readonly sendsPerSec: number;
  readonly lastConfirmMs: number;
  readonly cpu: string;
  /** How long the broker blocked publishing meanwhile (someone's memory or disk alarm). */
  readonly blockedMs: number;
}

interface FanoutResult {
  readonly queueType: string;
  readonly warm: FanoutTrial;
  readonly trials: readonly FanoutTrial[];
  readonly latency: {
    readonly perRun: Summary;
    readonly perSubscriber: ReadonlyArray<{ name: string; summary: Summary }>;
    readonly allThree: Summary;
    readonly toConfirm: Summary;
    readonly sendDuration: Summary;
    readonly scheduledRate: number;
    readonly achievedRate: number;
    /** Events whose 3 handlers all committed, per second, over the measured window: below the rate = a backlog. */
    readonly handledRate: number;
    readonly measured: number;
    readonly total: number;
    readonly blockedMs: number;
  };
  readonly retries: number;
  readonly checks: string;
}

/** Sends `FanoutPay` for seqs [from, from + n), `concurrency` at a time, each as soon as the previous resolved. */
async function produceClosedLoop(mediator: Mediator, from: number, n: number, concurrency: number): Promise<number> {
  let next = from,
    failures = 0,
    firstFailure = '';
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < from + n) {
        const result = await mediator.send(FanoutPay.from({ seq: next++ }), FANOUT_SEND);
        if (!result.ok) {
          failures++;
          firstFailure ||= JSON.stringify(result);
        }
      }
    }),
  );
  check(failures === 0, `fan-out: ${failures} sends failed, first ${firstFailure}`);
  return performance.now();
}

/** Waits until every subscriber committed every event below `until` (polling the commit hooks' counter). */
async function handledAll(until: number, timeoutMs: number): Promise<void> {
  const expected = SUBSCRIBERS.length * until;
  for (const deadline = performance.now() + timeoutMs; fan.commits < expected; await sleep(5))
    if (performance.now() > deadline)
      check(false, `fan-out: ${fan.commits} handler runs committed after ${timeoutMs} ms, expected ${expected}`);
}

/** The last commit of any subscriber for seqs [from, from + n). */
function lastCommit(from: number, n: number): number {
  let last = -Infinity;
  for (const name of SUBSCRIBER_NAMES) {
    const at = fan.committedAt.get(name)!;
    for (let seq = from; seq < from + n; seq++) last = Math.max(last, at[seq]!);
  }
  return last;
}

/**
 * One event type, three subscribers: producing sends (`recommendedStack` with the inbox, on `knexModule` +
 * `amqpModule` with their defaults) publish `FanoutPaid`; the module's relay publishes it to RabbitMQ; `subscribe()`
 * runs each subscriber on its own queue, each delivery a send through the same stack in its own transaction.
 */
async function fanoutRun(db: Knex, control: ConfirmChannel): Promise<FanoutResult> {
  await db.raw('TRUNCATE ??', [T.outbox]);
  await db.schema.withSchema(schema).createTable(FANOUT_TABLE.split('.')[1]!, (t) => {
    t.text('subscriber').notNullable();
    t.integer('seq').notNullable();
    t.primary(['subscriber', 'seq']);
  });
  for (const name of SUBSCRIBER_NAMES) fan.committedAt.set(name, []);
  const seqOf = new Map<string, number>();
  const confirmedAt: number[] = [];

  const container = new Container();
  container.load(knexModule({ knex: db, schema }), amqpModule({ url: AMQP_URL, exchanges: topology.exchanges }));
  const timed = new TimedOutbox(container.get(KnexOutbox), {
    added: (messages) => {
      for (const m of messages) seqOf.set(m.id, (m.payload as { seq: number }).seq);
    },
    confirmed: (ids, at) => {
      for (const id of ids) confirmedAt[seqOf.get(id)!] = at;
    },
  });
  container.rebind<Outbox>(TOKENS.Outbox).toConstantValue(timed);
  const mediator = createMediator(container, {
    handlers: [FanoutPayHandler, ...SUBSCRIBERS],
    middleware: recommendedStack({ rules: [everyone(FanoutPay), everyone(FanoutPaid)], inbox: true }),
  });
  const relay = container.get<RunningRelay>(TOKENS.Relay);
  const blocked = new BlockedClock(container.get(AmqpConnection));
  try {
    relay.start(1_000);
    const queues = await subscribe(mediator, container.get<MessageSource>(TOKENS.MessageSource), FANOUT_SERVICE);
    check(
      queues.every((q) => FANOUT_QUEUES.includes(q)),
      `fan-out: subscribe() declared ${queues.join(', ')}, not ${FANOUT_QUEUES.join(', ')}`,
    );
    const types = await queueTypes(AMQP_URL, queues);
    const queueType = types ? [...new Set(queues.map((q) => types.get(q) ?? '?'))].join(', ') : 'unknown';
    log(
      `fan-out: queues ${queues.join(', ')} (${queueType}); ${FANOUT_CONCURRENCY} producing sends in flight, pool ${FANOUT_POOL}`,
    );

    let nextSeq = 0;
    const throughput = async (n: number): Promise<FanoutTrial> => {
      const from = nextSeq;
      nextSeq += n;
      const cpu0 = cpuSnapshot(),
        blocked0 = blocked.ms,
        t0 = performance.now();
      const producedBy = await produceClosedLoop(mediator, from, n, FANOUT_CONCURRENCY);
      await handledAll(nextSeq, 300_000);
      const end = lastCommit(from, n),
        elapsedMs = end - t0;
      const cpu = coresSince(cpu0, performance.now() - t0);
      let lastConfirm = -Infinity;
      for (let seq = from; seq < nextSeq; seq++) lastConfirm = Math.max(lastConfirm, confirmedAt[seq]!);
      return {
        events: n,
        elapsedMs,
        eventsPerSec: (n / elapsedMs) * 1000,
        runsPerSec: ((SUBSCRIBERS.length * n) / elapsedMs) * 1000,
        sendsPerSec: (n / (producedBy - t0)) * 1000,
        lastConfirmMs: lastConfirm - t0,
        cpu,
        blockedMs: blocked.ms - blocked0,
      };
    };
    const warm = await throughput(FANOUT_WARM_N);
    log(`fan-out warm-up: ${rate(warm.eventsPerSec)} events/s (${FANOUT_WARM_N} events)`);
    const trials: FanoutTrial[] = [];
    for (let rep = 0; rep < FANOUT_REPS; rep++) {
      const trial = await throughput(FANOUT_N);
      trials.push(trial);
      log(
        `fan-out rep ${rep + 1}: ${rate(trial.eventsPerSec)} events/s, ${rate(trial.runsPerSec)} handler runs/s ` +
          `(${(trial.elapsedMs / 1000).toFixed(2)} s; sends ${rate(trial.sendsPerSec)}/s; cores ${trial.cpu}; ` +
          `broker blocked ${(trial.blockedMs / 1000).toFixed(1)} s)`,
      );
    }

    // Latency: open loop at FANOUT_RATE events/s, as the relay's latency run does.
    log(`fan-out latency: ${FANOUT_RATE} events/s for ${WARM_SECONDS} s warm-up + ${FANOUT_SECONDS} s`);
    const from = nextSeq;
    const total = Math.round(FANOUT_RATE * (WARM_SECONDS + FANOUT_SECONDS));
    const warmN = Math.round(FANOUT_RATE * WARM_SECONDS);
    nextSeq += total;
    const interval = 1_000 / FANOUT_RATE;
    const sentAt: number[] = [],
      resolvedAt: number[] = [];
    const sends: Array<Promise<void>> = [];
    let failures = 0,
      firstFailure = '';
    const blocked0 = blocked.ms;
    const t0 = performance.now();
    for (let i = 0; i < total;) {
      const due = Math.min(total, Math.floor((performance.now() - t0) / interval) + 1);
      for (; i < due; i++) {
        const seq = from + i;
        sentAt[seq] = performance.now();
        sends.push(
          mediator.send(FanoutPay.from({ seq }), FANOUT_SEND).then((result) => {
            resolvedAt[seq] = performance.now();
            if (!result.ok) {
              failures++;
              firstFailure ||= JSON.stringify(result);
            }
          }),
        );
      }
      if (i < total) await sleep(Math.max(1, t0 + i * interval - performance.now()));
    }
    await Promise.all(sends);
    check(failures === 0, `fan-out latency: ${failures} sends failed, first ${firstFailure}`);
    await handledAll(nextSeq, 120_000);
    const latencyBlockedMs = blocked.ms - blocked0;

    const perRun: number[] = [],
      allThree: number[] = [],
      toConfirm: number[] = [],
      sendDuration: number[] = [];
    const perSubscriber = SUBSCRIBER_NAMES.map((name) => ({ name, values: [] as number[] }));
    let first = Infinity,
      last = -Infinity,
      firstHandled = Infinity,
      lastHandled = -Infinity;
    for (let seq = from + warmN; seq < nextSeq; seq++) {
      const produced = fan.producedAt[seq]!;
      let slowest = -Infinity;
      for (const { name, values } of perSubscriber) {
        const delay = fan.committedAt.get(name)![seq]! - produced;
        values.push(delay);
        perRun.push(delay);
        slowest = Math.max(slowest, delay);
      }
      allThree.push(slowest);
      firstHandled = Math.min(firstHandled, produced + slowest);
      lastHandled = Math.max(lastHandled, produced + slowest);
      toConfirm.push(confirmedAt[seq]! - produced);
      sendDuration.push(resolvedAt[seq]! - sentAt[seq]!);
      first = Math.min(first, produced);
      last = Math.max(last, produced);
    }
    const measured = total - warmN;

    // Checks: every effect once, every delivery recorded in the inbox once, the outbox sent, the queues empty.
    const events = nextSeq;
    const effects = (await db(FANOUT_TABLE).select('subscriber').count({ n: '*' }).groupBy('subscriber')) as Array<{
      subscriber: string;
      n: string;
    }>;
    const inboxed = (await db(T.inbox)
      .select('consumer')
      .count({ n: '*' })
      .where('consumer', 'like', `${FANOUT_SERVICE}.%`)
      .groupBy('consumer')) as Array<{ consumer: string; n: string }>;
    const counts = await outboxCounts(db);
    check(
      counts.total === events && counts.sent === events && counts.unsent === 0 && counts.parked === 0,
      `fan-out: outbox ${JSON.stringify(counts)}, expected ${events} sent`,
    );
    for (const name of SUBSCRIBER_NAMES) {
      const n = Number(effects.find((r) => r.subscriber === name)?.n ?? 0);
      const m = Number(inboxed.find((r) => r.consumer === `${FANOUT_SERVICE}.${name}`)?.n ?? 0);
      check(n === events, `fan-out: ${name} wrote ${n} rows, expected ${events}`);
      check(m === events, `fan-out: ${name}'s inbox holds ${m} messages, expected ${events}`);
    }
    const idle = await Promise.race([
      container
        .get(AmqpSource)
        .idle()
        .then(() => true),
      sleep(30_000).then(() => false),
    ]);
    check(idle, 'fan-out: the subscribers were not idle 30 s after the last commit');
    const left: string[] = [];
    for (const queue of FANOUT_QUEUES) {
      const depth = await queueDepth(control, queue);
      if (depth > 0) left.push(`${queue}: ${depth}`);
    }
    check(left.length === 0, `fan-out: messages left in ${left.join(', ')}`);
    check(
      fan.commits === SUBSCRIBERS.length * events,
      `fan-out: ${fan.commits} commits, expected ${SUBSCRIBERS.length * events}`,
    );

    return {
      queueType,
      warm,
      trials,
      latency: {
        perRun: summarize(perRun),
        perSubscriber: perSubscriber.map(({ name, values }) => ({ name, summary: summarize(values) })),
        allThree: summarize(allThree),
        toConfirm: summarize(toConfirm),
        sendDuration: summarize(sendDuration),
        scheduledRate: FANOUT_RATE,
        achievedRate: ((measured - 1) / (last - first)) * 1000,
        handledRate: ((measured - 1) / (lastHandled - firstHandled)) * 1000,
        measured,
        total,
        blockedMs: latencyBlockedMs,
      },
      retries: fan.runs - fan.commits,
      checks:
        `${events} events (warm-ups included), every send ok; outbox ${counts.sent} sent, 0 unsent, 0 parked; ` +
        `${SUBSCRIBERS.length} × ${events} effect rows (one per subscriber and event, primary key) and inbox ` +
        `records; ${FANOUT_QUEUES.length} queues (with .retry and .dead) empty at the end`,
    };
  } finally {
    await relay.stop().catch(() => undefined);
    await container
      .get(AmqpConnection)
      .close()
      .catch(() => undefined);
  }
}

// ---- report --------------------------------------------------------------------------------------------------

function phaseCells(p: PhaseTimes | undefined): string {
  if (!p) return '— | — | — | —';
  const batches = p.marks;
  const perBatch = (total: number) => (batches ? ms(total / batches, 2) : '—');
  return `${batches} × ${(p.claimed / Math.max(1, batches)).toFixed(0)} (≤ ${p.maxInFlight} in flight) | ${perBatch(p.claim - p.emptyClaim)} | ${perBatch(p.bus)} | ${perBatch(p.markSent)}`;
}

function cpuModel(): string {
  try {
    return (
      /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? os.cpus()[0]?.model ?? '?'
    );
  } catch {
    return os.cpus()[0]?.model ?? '?';
  }
}

async function main(): Promise<void> {
  const db = knex({ client: 'pg', connection: DB_URL, pool: { min: 0, max: 10 }, acquireConnectionTimeout: 10_000 });
  let controlModel: ChannelModel | undefined, rawModel: ChannelModel | undefined;
  let busConnection: AmqpConnection | undefined;
  const out: string[] = [];
  let failed: unknown;
  try {
    const {
      rows: [{ version: pgVersion }],
    } = await db.raw('SELECT version()');
    const {
      rows: [{ synchronous_commit: syncCommit }],
    } = await db.raw('SHOW synchronous_commit');
    await migrate(db, { schema });
    log(`schema ${schema}, broker prefix ${topology.prefix}; phases: ${PHASES.filter(runs).join(', ')}`);

    controlModel = await connect(AMQP_URL);
    const rabbitVersion = String(
      (controlModel.connection as unknown as { serverProperties?: { version?: string } }).serverProperties?.version ??
        '?',
    );
    const control = await controlModel.createConfirmChannel();
    await declareTopology(control, topology.exchanges, [
      { queue: Q_THROUGHPUT, routingKey: THROUGHPUT_TYPE },
      { queue: Q_LATENCY, routingKey: LATENCY_TYPE },
    ]);

    let trials: Map<ThroughputId, Trial[]> | undefined;
    if (runs('throughput')) {
      rawModel = await connect(AMQP_URL);
      const raw = await rawModel.createConfirmChannel();
      busConnection = new AmqpConnection(AMQP_URL);
      const bus = new AmqpBus(busConnection, { exchanges: topology.exchanges, mandatoryEvents: false });
      const e: Env = { db, control, raw, bus, outbox: new KnexOutbox(new KnexUnitOfWork(db), T.outbox) };

      // Warm-up: every row once on a small run (JIT, connections, channels, exchange declarations, plan cache).
      for (const row of ROWS) {
        const w = await runRow(e, row, WARM_N);
        log(`warm-up ${row.id}: ${rate(w.msgPerSec)} msg/s (${WARM_N} messages)`);
      }
      // Timed: REPS repetitions of every row, order rotated per repetition.
      trials = new Map<ThroughputId, Trial[]>(ROWS.map((r) => [r.id, []]));
      for (let rep = 0; rep < REPS; rep++) {
        for (let k = 0; k < ROWS.length; k++) {
          const row = ROWS[(k + rep) % ROWS.length]!;
          const trial = await runRow(e, row, N);
          trials.get(row.id)!.push(trial);
          log(
            `rep ${rep + 1} ${row.id}: ${rate(trial.msgPerSec)} msg/s (${(trial.elapsedMs / 1000).toFixed(2)} s; ${trial.checks})`,
          );
        }
      }
      await busConnection.close();
      busConnection = undefined;
    }

    let lat: LatencyResult | undefined;
    if (runs('latency')) {
      log(`latency: ${RATE} msg/s for ${WARM_SECONDS} s warm-up + ${SECONDS} s (${STACK} stack)`);
      lat = await latencyRun(db, control);
      log(
        `latency: p50 ${ms(lat.fromCommit.p50)} p99 ${ms(lat.fromCommit.p99)}, achieved ${lat.achievedRate.toFixed(0)} msg/s`,
      );
    }

    let fanout: FanoutResult | undefined;
    if (runs('fanout')) {
      const fanoutDb = knex({
        client: 'pg',
        connection: DB_URL,
        pool: { min: 0, max: FANOUT_POOL },
        acquireConnectionTimeout: 10_000,
      });
      try {
        fanout = await fanoutRun(fanoutDb, control);
      } finally {
        await fanoutDb.destroy();
      }
      const l = fanout.latency.perRun;
      log(`fan-out latency: p50 ${ms(l.p50)} p99 ${ms(l.p99)} max ${ms(l.max)} per handler run`);
    }

    // ---- Markdown --------------------------------------------------------------------------------------------
    out.push(
      `Run ${new Date().toISOString()} · Node ${process.version} · ${os.availableParallelism()} CPUs (nproc) · ${cpuModel()} · linux ${os.release()}`,
    );
    out.push(
      `RabbitMQ ${rabbitVersion} and ${String(pgVersion).split(' on ')[0]} (synchronous_commit=${syncCommit}) on the same machine, over loopback.`,
    );
    out.push('');
    const med = (id: ThroughputId) => median(trials!.get(id)!.map((t) => t.msgPerSec));
    const raw100 = trials ? med('raw-100') : NaN;
    if (trials) {
      out.push(
        `### Throughput: ${N.toLocaleString('en-US')} messages (${PAYLOAD_BYTES}-byte JSON bodies, persistent, one durable classic queue bound), ${REPS} repetitions, median; relay pipeline: ${PIPELINE ?? 'default (2)'}`,
      );
      out.push('');
      out.push(
        '| row | what | msg/s (median; per rep) | ÷ raw amqplib (100) | relay batches × rows | claim / batch | bus publish + confirms / batch | markSent / batch | CPU cores busy: node + pg + rabbit |',
      );
      out.push(
        '|-----|------|------------------------:|--------------------:|---------------------:|--------------:|-------------------------------:|-----------------:|-----------:|',
      );
      for (const row of ROWS) {
        const ts = trials.get(row.id)!;
        const m = med(row.id);
        const mid = ts.reduce(
          (best, t) => (Math.abs(t.msgPerSec - m) < Math.abs(best.msgPerSec - m) ? t : best),
          ts[0]!,
        );
        out.push(
          `| \`${row.id}\` | ${row.label} | **${rate(m)}** (${ts.map((t) => rate(t.msgPerSec)).join(' / ')}) | ${(m / raw100).toFixed(2)}× | ${phaseCells(mid.phases)} | ${mid.cpu} |`,
        );
      }
      out.push('');
      out.push(
        'Relay phase columns are from the repetition nearest the median, per non-empty batch (pass-through \`TimedOutbox\` around the \`KnexOutbox\`): `claim` = `KnexOutbox.claim` (transaction: advisory lock + `UPDATE … RETURNING`), `bus` = from the claim returning to `markSent` being called (encode, publish, wait for every confirm: `AmqpBus.publish`), `markSent` = the `UPDATE … WHERE id IN (…)`. The relay pipelines batches, so the phases of different batches overlap (`≤ k in flight`: the most batches claimed and not yet settled at once). CPU: cores busy over the timed part of that repetition, from `process.cpuUsage()` and /proc for the postgres and beam.smp processes; the machine has 2.',
      );
      out.push('');
      out.push(
        `Checks: every run (warm-up included) ended with the bound queue holding exactly its N messages (checkQueue), and every relay run with the outbox at N sent, 0 unsent, 0 parked; a mismatch aborts the bench. Queue purged and outbox truncated between runs.`,
      );
      out.push('');
    }
    const line = (label: string, s: Summary) =>
      out.push(
        `| ${label} | ${s.p50.toFixed(1)} | ${s.p90.toFixed(1)} | **${s.p99.toFixed(1)}** | ${s.max.toFixed(1)} | ${s.mean.toFixed(1)} | ${s.n} |`,
      );
    if (lat) {
      out.push(
        `### Commit → confirm latency at ${RATE} msg/s (${STACK === 'full' ? '`recommendedStack`' : '`validation()`, `unitOfWork()`, `publish()`'} on \`knexModule\` + \`amqpModule\`, ${SECONDS} s after ${WARM_SECONDS} s warm-up)`,
      );
      out.push('');
      out.push('| measure (ms) | p50 | p90 | p99 | max | mean | n |');
      out.push('|--------------|----:|----:|----:|----:|-----:|--:|');
      line('commit (afterCommit hook) → batch confirmed (relay calls `markSent`)', lat.fromCommit);
      line('send resolved → batch confirmed', lat.fromResolved);
      line('commit → marked sent (`markSent` resolved)', lat.fromCommitToMarked);
      line('commit → delivered to a consumer of the bound queue (diagnostic, see note)', lat.fromCommitToDelivered);
      line('send duration (due time → send resolved)', lat.sendDuration);
      out.push('');
      const lp = lat.phases;
      out.push(
        `Rate: scheduled ${lat.scheduledRate} msg/s, committed **${lat.achievedRate.toFixed(0)} msg/s**, confirmed ${lat.confirmedRate.toFixed(0)} msg/s over the measured window. ` +
          `${lat.over} of ${lat.measured} messages (${((lat.over / lat.measured) * 100).toFixed(2)} %) took ≥ ${TARGET_P99_MS} ms. ` +
          `Relay (whole run): ${lp.marks} batches, ${(lp.claimed / Math.max(1, lp.marks)).toFixed(1)} rows per batch, ${lp.emptyClaims} empty claims; per batch claim ${ms((lp.claim - lp.emptyClaim) / Math.max(1, lp.marks), 2)}, ` +
          `bus ${ms(lp.bus / Math.max(1, lp.marks), 2)}, markSent ${ms(lp.markSent / Math.max(1, lp.marks), 2)}; empty claim ${ms(lp.emptyClaim / Math.max(1, lp.emptyClaims), 2)}.`,
      );
      out.push('');
      out.push(`Checks: ${lat.checks}.`);
      out.push('');
    }
    if (fanout) {
      const k = SUBSCRIBERS.length;
      const names = SUBSCRIBER_NAMES.map((s) => `\`${s}\``).join(', ');
      out.push(
        `### One event, ${k} handlers: \`@on\` subscribers end to end ` +
          `(\`recommendedStack({ inbox: true })\` on \`knexModule\` + \`amqpModule\` defaults; ` +
          `${fanout.queueType} queues)`,
      );
      out.push('');
      out.push(
        `Producer: \`send(FanoutPay)\` → \`ctx.publish(FanoutPaid)\` (${PAYLOAD_BYTES}-byte body), ` +
          `${FANOUT_CONCURRENCY} sends in flight (closed loop); the module's relay; one knex pool of ${FANOUT_POOL} ` +
          'for all of it; ' +
          `\`subscribe(mediator, source, service)\`: ${names}, each on its own queue (default prefetch), each ` +
          'delivery one INSERT into a bench table in its own transaction. Clock: from the first send to the last ' +
          `of the ${k} × N handler commits (afterCommit hooks).`,
      );
      out.push('');
      out.push(
        '| run | events | events/s (end to end) | handler runs/s | producing sends/s | last relay confirm ' +
          '| CPU cores busy: node + pg + rabbit | broker blocked publishing |',
      );
      out.push('|-----|-------:|------:|------:|------:|------:|-----------:|------:|');
      const seconds = (v: number) => `${(v / 1000).toFixed(2)} s`;
      const trialLine = (label: string, t: FanoutTrial) =>
        out.push(
          `| ${label} | ${t.events.toLocaleString('en-US')} | **${rate(t.eventsPerSec)}** | ${rate(t.runsPerSec)} ` +
            `| ${rate(t.sendsPerSec)} | ${seconds(t.lastConfirmMs)} of ${seconds(t.elapsedMs)} | ${t.cpu} ` +
            `| ${seconds(t.blockedMs)} |`,
        );
      trialLine('warm-up', fanout.warm);
      fanout.trials.forEach((t, i) => trialLine(`rep ${i + 1}`, t));
      if (fanout.trials.length > 1) {
        const m = median(fanout.trials.map((t) => t.eventsPerSec));
        out.push('');
        out.push(`Median of ${fanout.trials.length}: **${rate(m)} events/s** (${rate(m * k)} handler runs/s).`);
      }
      out.push('');
      const fl = fanout.latency;
      out.push(
        `#### Producer commit → handler commit at ${fl.scheduledRate} events/s ` +
          `(${FANOUT_SECONDS} s after ${WARM_SECONDS} s warm-up, open loop)`,
      );
      out.push('');
      out.push('| measure (ms) | p50 | p90 | p99 | max | mean | n |');
      out.push('|--------------|----:|----:|----:|----:|-----:|--:|');
      line(`producer commit → handler commit (each of ${k} × events)`, fl.perRun);
      for (const { name, summary } of fl.perSubscriber) line(`… \`${name}\` only`, summary);
      line(`producer commit → all ${k} committed (per event)`, fl.allThree);
      line('producer commit → relay confirm (per event)', fl.toConfirm);
      line('producing send duration (due time → send resolved)', fl.sendDuration);
      out.push('');
      out.push(
        `Rate: scheduled ${fl.scheduledRate} events/s, produced (committed) **${fl.achievedRate.toFixed(0)} events/s**, ` +
          `handled by all ${k} **${fl.handledRate.toFixed(0)} events/s** over the measured window ` +
          `(${fl.measured} of ${fl.total} events)` +
          (fl.handledRate < 0.95 * fl.achievedRate
            ? ' — the subscribers fell behind: the latencies above measure a growing backlog, not the pipeline. '
            : '. ') +
          `The broker blocked publishing for ${(fl.blockedMs / 1000).toFixed(2)} s of it. ` +
          `Handler runs rolled back and retried (whole phase): ${fanout.retries}.`,
      );
      out.push('');
      out.push(`Checks: ${fanout.checks}.`);
      out.push('');
    }
    if (trials || lat) {
      out.push('### Targets');
      out.push('');
      out.push('| target | measured | met? |');
      out.push('|--------|---------:|------|');
      const verdict = (ratio: number, target: number) => (ratio >= target ? 'yes' : '**no**');
      if (trials) {
        const ratio100 = med('relay-100') / raw100,
          ratio500 = med('relay-500') / raw100;
        out.push(
          `| relay-100 ≥ ${TARGET_RATIO[100]}× raw amqplib (batch 100) | ${ratio100.toFixed(2)}× | ${verdict(ratio100, TARGET_RATIO[100])} |`,
        );
        out.push(
          `| relay-500 ≥ ${TARGET_RATIO[500]}× raw amqplib (batch 100) | ${ratio500.toFixed(2)}× | ${verdict(ratio500, TARGET_RATIO[500])} |`,
        );
      }
      if (lat) {
        out.push(
          `| commit → confirm p99 < ${TARGET_P99_MS} ms at ${RATE} msg/s | ${lat.fromCommit.p99.toFixed(1)} ms at ${lat.achievedRate.toFixed(0)} msg/s | ${lat.fromCommit.p99 < TARGET_P99_MS ? 'yes' : '**no**'} |`,
        );
      }
    }
  } catch (error) {
    failed = error;
  } finally {
    await busConnection?.close().catch(() => undefined);
    await rawModel?.close().catch(() => undefined);
    await controlModel?.close().catch(() => undefined);
    if (!KEEP) {
      try {
        const queues = [Q_THROUGHPUT, Q_LATENCY, ...(runs('fanout') ? FANOUT_QUEUES : [])];
        const deleted = await deleteTopology(AMQP_URL, topology.exchanges, queues);
        log(`deleted ${deleted.join(', ')}`);
      } catch (error) {
        log(`could not delete the broker objects of ${topology.prefix}: ${(error as Error).message}`);
      }
      await db.raw('DROP SCHEMA IF EXISTS ?? CASCADE', [schema]).then(
        () => log(`dropped schema ${schema}`),
        (error: Error) => log(`could not drop ${schema}: ${error.message}`),
      );
    } else {
      log(`kept schema ${schema} and broker objects ${topology.prefix}.*`);
    }
    await db.destroy();
  }
  if (failed) throw failed;
  out.push('');
  out.push(`Took ${((performance.now() - started) / 1000).toFixed(0)} s.`);
  process.stdout.write(`${out.join('\n')}\n`);
}

await main();
