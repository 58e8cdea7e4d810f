// The outbox relay on Postgres + RabbitMQ: throughput against raw amqplib, and commit-to-confirm latency at a
// steady rate through the real pipeline.
//
//   npm run bench:amqp          # ~1.5–2 min, prints a Markdown report to stdout (progress on stderr)
//
// DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test), AMQP_URL (default amqp://guest:guest@127.0.0.1:5672).
// Knobs: BENCH_AMQP_N (20000 messages per throughput run), BENCH_AMQP_REPS (3), BENCH_AMQP_WARM_N (2000),
// BENCH_AMQP_RATE (500 msg/s), BENCH_AMQP_SECONDS (10 s measured) after BENCH_AMQP_WARM_SECONDS (2 s),
// BENCH_AMQP_STACK (`lean`: validation + unitOfWork + publish; `full`: recommendedStack), BENCH_AMQP_PIPELINE (the
// relay's batches in flight; default: the relay's), BENCH_AMQP_KEEP=1 (keep the schema and the broker objects).
//
// Everything lives in a fresh Postgres schema (`amqpbench_<random>`, migrate()) and in exchanges/queues named
// `ucc-bench-<random>.*`; both are deleted at the end, also after a failure.
import 'reflect-metadata';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { connect, type ChannelModel, type ConfirmChannel } from 'amqplib';
import { Container, injectable } from 'inversify';
import knex, { type Knex } from 'knex';
import * as v from 'valibot';
import { AmqpBus, AmqpConnection, amqpModule } from '../adapters/amqp/index.js';
import { encode } from '../adapters/amqp/codec.js';
import { KnexOutbox, KnexUnitOfWork, knexModule, migrate, tables } from '../adapters/knex/index.js';
import {
  Command,
  Event,
  TOKENS,
  createMediator,
  createRelay,
  handles,
  ok,
  type Context,
  type Handler,
  type Middleware,
  type Outbox,
  type RunningRelay,
} from '../lib/index.js';
import { everyone, publish, recommendedStack, unitOfWork, validation } from '../middleware/index.js';
import {
  TimedOutbox,
  benchTopology,
  cpuSnapshot,
  declareTopology,
  deleteTopology,
  makeMessages,
  ms,
  payloadOf,
  rate,
  sleep,
  summarize,
  type PhaseTimes,
  type Summary,
} from './amqp-common.js';
import { check } from './harness.js';
import { median } from './pg-common.js';

const env = (name: string, fallback: number) => {
  const raw = process.env[name];
  return raw === undefined || raw === '' ? fallback : Number(raw);
};
const DB_URL = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test';
const AMQP_URL = process.env.AMQP_URL || 'amqp://guest:guest@127.0.0.1:5672';
const N = env('BENCH_AMQP_N', 20_000);
const REPS = env('BENCH_AMQP_REPS', 3);
const WARM_N = env('BENCH_AMQP_WARM_N', 2_000);
const RATE = env('BENCH_AMQP_RATE', 500);
const SECONDS = env('BENCH_AMQP_SECONDS', 10);
const WARM_SECONDS = env('BENCH_AMQP_WARM_SECONDS', 2);
const STACK = process.env.BENCH_AMQP_STACK === 'full' ? 'full' : 'lean';
const KEEP = env('BENCH_AMQP_KEEP', 0) !== 0;
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

/** N committed rows (the library's own `add`, autocommit chunks of 1,000) → one relay → all confirmed and marked sent. */
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
function coresSince(before: ReturnType<typeof cpuSnapshot>, elapsedMs: number): string {
  const after = cpuSnapshot(),
    wallUs = elapsedMs * 1000;
  const cores = (k: 'node' | 'pg' | 'rabbit') => ((after[k] - before[k]) / wallUs).toFixed(2);
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
    log(`schema ${schema}, broker prefix ${topology.prefix}`);

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
    const trials = new Map<ThroughputId, Trial[]>(ROWS.map((r) => [r.id, []]));
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

    log(`latency: ${RATE} msg/s for ${WARM_SECONDS} s warm-up + ${SECONDS} s (${STACK} stack)`);
    const lat = await latencyRun(db, control);
    log(
      `latency: p50 ${ms(lat.fromCommit.p50)} p99 ${ms(lat.fromCommit.p99)}, achieved ${lat.achievedRate.toFixed(0)} msg/s`,
    );

    // ---- Markdown --------------------------------------------------------------------------------------------
    const med = (id: ThroughputId) => median(trials.get(id)!.map((t) => t.msgPerSec));
    const raw100 = med('raw-100');
    out.push(
      `Run ${new Date().toISOString()} · Node ${process.version} · ${os.availableParallelism()} CPUs (nproc) · ${cpuModel()} · linux ${os.release()}`,
    );
    out.push(
      `RabbitMQ ${rabbitVersion} and ${String(pgVersion).split(' on ')[0]} (synchronous_commit=${syncCommit}) on the same machine, over loopback.`,
    );
    out.push('');
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
      const mid = ts.reduce((best, t) => (Math.abs(t.msgPerSec - m) < Math.abs(best.msgPerSec - m) ? t : best), ts[0]!);
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
    out.push(
      `### Commit → confirm latency at ${RATE} msg/s (${STACK === 'full' ? '`recommendedStack`' : '`validation()`, `unitOfWork()`, `publish()`'} on \`knexModule\` + \`amqpModule\`, ${SECONDS} s after ${WARM_SECONDS} s warm-up)`,
    );
    out.push('');
    out.push('| measure (ms) | p50 | p90 | p99 | max | mean | n |');
    out.push('|--------------|----:|----:|----:|----:|-----:|--:|');
    const line = (label: string, s: Summary) =>
      out.push(
        `| ${label} | ${s.p50.toFixed(1)} | ${s.p90.toFixed(1)} | **${s.p99.toFixed(1)}** | ${s.max.toFixed(1)} | ${s.mean.toFixed(1)} | ${s.n} |`,
      );
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
    const ratio100 = med('relay-100') / raw100,
      ratio500 = med('relay-500') / raw100;
    out.push('### Targets');
    out.push('');
    out.push('| target | measured | met? |');
    out.push('|--------|---------:|------|');
    const verdict = (ratio: number, target: number) => (ratio >= target ? 'yes' : '**no**');
    out.push(
      `| relay-100 ≥ ${TARGET_RATIO[100]}× raw amqplib (batch 100) | ${ratio100.toFixed(2)}× | ${verdict(ratio100, TARGET_RATIO[100])} |`,
    );
    out.push(
      `| relay-500 ≥ ${TARGET_RATIO[500]}× raw amqplib (batch 100) | ${ratio500.toFixed(2)}× | ${verdict(ratio500, TARGET_RATIO[500])} |`,
    );
    out.push(
      `| commit → confirm p99 < ${TARGET_P99_MS} ms at ${RATE} msg/s | ${lat.fromCommit.p99.toFixed(1)} ms at ${lat.achievedRate.toFixed(0)} msg/s | ${lat.fromCommit.p99 < TARGET_P99_MS ? 'yes' : '**no**'} |`,
    );
  } catch (error) {
    failed = error;
  } finally {
    await busConnection?.close().catch(() => undefined);
    await rawModel?.close().catch(() => undefined);
    await controlModel?.close().catch(() => undefined);
    if (!KEEP) {
      try {
        const deleted = await deleteTopology(AMQP_URL, topology.exchanges, [Q_THROUGHPUT, Q_LATENCY]);
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
