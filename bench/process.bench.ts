// Declared processes (usecasecore/processes) on Postgres + RabbitMQ: start → completed latency of a three-step
// checkout at a steady rate, processes/s at saturation, and plain jobs/s on the same setup for comparison.
//
//   node .ci/node.mjs npx tsx bench/process.bench.ts   # ~1 min, a Markdown report on stdout (progress on stderr)
//
// DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test), AMQP_URL (default amqp://guest:guest@127.0.0.1:5672).
// Knobs: BENCH_PROCESS_RATE (50 processes/s) for BENCH_PROCESS_LATENCY_N (500 processes); BENCH_PROCESS_JOB_RATE
// (150 jobs/s: the step jobs' rate at 50 processes/s) for BENCH_PROCESS_JOB_LATENCY_N (750); BENCH_PROCESS_IN_FLIGHT
// (64 processes or jobs in flight at saturation), BENCH_PROCESS_SAT_N (600 processes per saturation run; the jobs'
// run takes 3 × as many jobs: as many worker runs), BENCH_PROCESS_REPS (2), BENCH_PROCESS_WARM_N (100),
// BENCH_PROCESS_POOL (10: knexModule's default), BENCH_PROCESS_POLL_MS (1000: relay.start(1_000), as
// samples/server.ts), BENCH_PROCESS_PREFETCH (work()'s default, 16), BENCH_PROCESS_WAKE=0 (the relay hears no wake
// after commit: only its poll moves rows, as `usecasecore relay` in a process of its own), BENCH_PROCESS_KEEP=1 (keep
// the schema and the broker objects).
//
// One service as a production user wires it (bench/process-app.ts): knexModule + amqpModule (quorum queues),
// recommendedStack({ inbox: true }), processes([BenchCheckout]) and a plain job type served by work(), the module's
// relay started and woken after each commit. It works in a schema `procbench_<random>` and broker objects named
// `ucc-bench-<random>.*`, deleted at the end (also after a failure).
import 'reflect-metadata';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import knex, { type Knex } from 'knex';
import { migrate, tables } from '../adapters/knex/index.js';
import {
  BlockedClock,
  benchTopology,
  cpuSince,
  cpuSnapshot,
  deleteTopology,
  ms,
  rate,
  summarize,
  zeroPhases,
  type PhaseTimes,
  type Summary,
} from './amqp-common.js';
import { BENCH_AMQP_URL, BENCH_DB_URL, check, envNumber } from './harness.js';
import { median } from './pg-common.js';
import { BenchCheckout, EFFECTS_TABLE, EnqueueBenchJob, KINDS, startApp, type App, type Kind } from './process-app.js';
import { closedLoop, countStatements, openLoop, within, type StatementCount } from './process-load.js';

const env = envNumber;
const DB_URL = BENCH_DB_URL;
const AMQP_URL = BENCH_AMQP_URL;
const RATE = env('BENCH_PROCESS_RATE', 50);
const LATENCY_N = env('BENCH_PROCESS_LATENCY_N', 500);
const JOB_RATE = env('BENCH_PROCESS_JOB_RATE', 150);
const JOB_LATENCY_N = env('BENCH_PROCESS_JOB_LATENCY_N', 750);
const IN_FLIGHT = env('BENCH_PROCESS_IN_FLIGHT', 64);
const SAT_N = env('BENCH_PROCESS_SAT_N', 600);
const REPS = env('BENCH_PROCESS_REPS', 2);
const WARM_N = env('BENCH_PROCESS_WARM_N', 100);
const COUNT_N = env('BENCH_PROCESS_COUNT_N', 20);
const POOL = env('BENCH_PROCESS_POOL', 10);
const POLL_MS = env('BENCH_PROCESS_POLL_MS', 1_000);
const PREFETCH = env('BENCH_PROCESS_PREFETCH', 0) || undefined;
const WAKE = env('BENCH_PROCESS_WAKE', 1) !== 0;
const KEEP = env('BENCH_PROCESS_KEEP', 0) !== 0;
const STEPS = BenchCheckout.steps.length;
const TARGET = { p50: 30, p99: 100 } as const;
/** Every send's options: the actor travels in the jobs' headers to the steps' sends. */
const SEND = { actor: { id: 'bench' } } as const;
/** No wait in the bench is longer than this: a stuck pipeline fails the run instead of hanging it. */
const STUCK_MS = 120_000;

const log = (line: string) => process.stderr.write(`${line}\n`);
const load = () =>
  os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(', ');
const started = performance.now();
const schema = `procbench_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
const T = tables({ schema });
const topology = benchTopology();

// ---- sending ---------------------------------------------------------------------------------------------------

/** Send times by seq (`performance.now()`): just before `mediator.send`, and when it resolved. */
interface Sends {
  readonly sentAt: number[];
  readonly resolvedAt: number[];
  next: number;
  failures: number;
  firstFailure: string;
}
const newSends = (): Sends => ({ sentAt: [], resolvedAt: [], next: 0, failures: 0, firstFailure: '' });
const checkouts = newSends();
/** The process id each checkout's start answered, by seq. */
const processIdOf: string[] = [];
const jobs = newSends();

/** Takes `n` seqs of `sends`: the first one. */
function take(sends: Sends, n: number): number {
  const from = sends.next;
  sends.next += n;
  return from;
}

/** "Start": just before the send that starts the process (its record and first step job commit with it). */
async function startCheckout(app: App, seq: number): Promise<void> {
  checkouts.sentAt[seq] = performance.now();
  const result = await app.mediator.send(new BenchCheckout({ seq, orderId: `o-${seq}` }), SEND);
  checkouts.resolvedAt[seq] = performance.now();
  if (result.ok) processIdOf[seq] = result.value.processId;
  else failed(checkouts, result);
}

async function enqueueJob(app: App, seq: number): Promise<void> {
  jobs.sentAt[seq] = performance.now();
  const result = await app.mediator.send(new EnqueueBenchJob({ seq }), SEND);
  jobs.resolvedAt[seq] = performance.now();
  if (!result.ok) failed(jobs, result);
}

function failed(sends: Sends, result: unknown): void {
  sends.failures++;
  sends.firstFailure ||= JSON.stringify(result);
}

/**
 * What completes a unit: a checkout's last step, or the job itself. "Completed" is the Ship handler's afterCommit
 * hook (process-app.ts `Effects.write`): the step's send is nested in the step job's send, so the hook runs once
 * the outermost COMMIT returned, the one whose transaction also marks the process `completed` (advance.ts `#end`).
 * It costs a `performance.now()` and a map lookup, in this process, as it happens. Polling the ProcessStore instead
 * would add up to its interval to every sample and a query per poll to the load being measured; the checks at the
 * end read the store once to confirm every process ended `completed`.
 */
const DONE: Record<'checkout' | 'job', Kind> = { checkout: 'ship', job: 'job' };
type Unit = keyof typeof DONE;
const sendsOf = (unit: Unit) => (unit === 'checkout' ? checkouts : jobs);
const fire = (app: App, unit: Unit, seq: number) =>
  unit === 'checkout' ? startCheckout(app, seq) : enqueueJob(app, seq);

/** Waits (bounded) until every unit of seqs [from, from + n) completed. */
async function completed(app: App, unit: Unit, from: number, n: number): Promise<void> {
  const all = Array.from({ length: n }, (_, i) => app.commits.when(DONE[unit], from + i));
  await within(Promise.all(all), STUCK_MS, `${n} ${unit}s completed`);
}

/** Relay counters over a phase: the difference of two snapshots of the timed outbox's phases. */
function relaySince(app: App, before: PhaseTimes): PhaseTimes {
  const now = app.outbox.phases;
  const out = zeroPhases();
  for (const key of Object.keys(out) as Array<keyof PhaseTimes>) out[key] = now[key] - before[key];
  out.maxInFlight = now.maxInFlight;
  return out;
}

// ---- phase: saturation (closed loop) -------------------------------------------------------------------------------

interface Trial {
  readonly unit: Unit;
  readonly units: number;
  readonly elapsedMs: number;
  readonly perSec: number;
  /** Worker runs per second: step jobs (3 per checkout) or jobs. */
  readonly runsPerSec: number;
  readonly statements: number;
  readonly relay: PhaseTimes;
  readonly cpu: string;
  /** CPU ms per unit: this process (app, relay and workers), and Postgres. */
  readonly nodeMs: number;
  readonly pgMs: number;
  readonly blockedMs: number;
  readonly load: string;
}

/**
 * `n` units, `IN_FLIGHT` at a time: each starter sends one (a checkout's start, a job's enqueue), waits until it
 * completed, and sends the next. Clock: from the first send to the last completing commit.
 */
async function saturation(app: App, blocked: BlockedClock, unit: Unit, n: number, inFlight = IN_FLIGHT) {
  const sends = sendsOf(unit);
  const from = take(sends, n);
  const [cpu0, blocked0, relay0] = [cpuSnapshot(), blocked.ms, { ...app.outbox.phases }];
  const counter = countStatements();
  const t0 = performance.now();
  await within(
    closedLoop(inFlight, n, async (i) => {
      await fire(app, unit, from + i);
      await app.commits.when(DONE[unit], from + i);
    }),
    STUCK_MS,
    `${n} ${unit}s at saturation`,
  );
  const end = Math.max(...app.commits.at[DONE[unit]].slice(from, from + n));
  const { total } = counter.stop();
  const elapsedMs = end - t0;
  const used = cpuSince(cpu0);
  const cores = (us: number) => (us / 1_000 / elapsedMs).toFixed(2);
  const runs = unit === 'checkout' ? STEPS * n : n;
  return {
    unit,
    units: n,
    elapsedMs,
    perSec: (n / elapsedMs) * 1_000,
    runsPerSec: (runs / elapsedMs) * 1_000,
    statements: total / n,
    relay: relaySince(app, relay0),
    cpu: `${cores(used.node)} + ${cores(used.pg)} + ${cores(used.rabbit)}`,
    nodeMs: used.node / 1_000 / n,
    pgMs: used.pg / 1_000 / n,
    blockedMs: blocked.ms - blocked0,
    load: load(),
  } satisfies Trial;
}

// ---- phase: latency (open loop) ------------------------------------------------------------------------------------

interface Latency {
  readonly unit: Unit;
  readonly scheduled: number;
  readonly n: number;
  /** Start (just before the send) → the completing commit. */
  readonly total: Summary;
  /** Start → send resolved (the start's own transaction). */
  readonly send: Summary;
  /** Checkouts only: send resolved → Reserve committed, Reserve → Charge, Charge → Ship (= completed). */
  readonly hops: readonly Summary[];
  /** Where a hop's time goes (every hop pooled): see `breakdown`. */
  readonly parts: Parts;
  readonly sentPerSec: number;
  readonly completedPerSec: number;
  readonly over: number;
  readonly relay: PhaseTimes;
  readonly blockedMs: number;
  readonly load: string;
}

/** Per seq of [from, from + n): f(seq), summarized. */
const over = (from: number, n: number, f: (seq: number) => number) =>
  summarize(Array.from({ length: n }, (_, i) => f(from + i)));

/** The rate between the first and the last of `times` (per second). */
function rateOf(times: readonly number[]): number {
  const sorted = [...times].sort((a, b) => a - b);
  return ((sorted.length - 1) / (sorted[sorted.length - 1]! - sorted[0]!)) * 1_000;
}

interface Parts {
  /** The previous commit (for a first step or a job: the starting send resolved) → the relay has the confirm. */
  readonly relay: Summary;
  /** Relay has the confirm → the step's handler began (delivered, job taken, transaction begun, process locked). */
  readonly deliver: Summary;
  /** The handler began → its transaction committed (the write, the process saved, the next step staged). */
  readonly commit: Summary;
}

/** Each hop of seqs [from, from + n) cut in three at the relay's confirm and the handler's start, pooled. */
function breakdown(app: App, unit: Unit, from: number, n: number): Parts {
  const { at, began } = app.commits;
  const kinds: readonly Kind[] = unit === 'checkout' ? KINDS.slice(0, STEPS) : ['job'];
  const [relay, deliver, commit] = [[], [], []] as number[][];
  for (let seq = from; seq < from + n; seq++) {
    for (const [k, kind] of kinds.entries()) {
      const before = k === 0 ? sendsOf(unit).resolvedAt[seq]! : at[kinds[k - 1]!][seq]!;
      const key = unit === 'checkout' ? `${processIdOf[seq]}:${k}` : `job:${seq}`;
      const confirmed = app.relayed.confirmedAt.get(key);
      check(confirmed !== undefined, `no relay confirm recorded for ${key}`);
      relay!.push(confirmed - before);
      deliver!.push(began[kind][seq]! - confirmed);
      commit!.push(at[kind][seq]! - began[kind][seq]!);
    }
  }
  return { relay: summarize(relay!), deliver: summarize(deliver!), commit: summarize(commit!) };
}

/** `n` units sent at `perSecond` whatever the system does (open loop), each timed from its send to its completion. */
async function latency(app: App, blocked: BlockedClock, unit: Unit, perSecond: number, n: number): Promise<Latency> {
  const sends = sendsOf(unit);
  const from = take(sends, n);
  const [blocked0, relay0] = [blocked.ms, { ...app.outbox.phases }];
  await within(
    openLoop(perSecond, n, (i) => fire(app, unit, from + i)),
    STUCK_MS,
    `${n} ${unit}s sent at ${perSecond}/s`,
  );
  await completed(app, unit, from, n);
  const at = app.commits.at;
  const done = at[DONE[unit]];
  const total = Array.from({ length: n }, (_, i) => done[from + i]! - sends.sentAt[from + i]!);
  const hops =
    unit === 'checkout'
      ? [
          over(from, n, (s) => at.reserve[s]! - sends.resolvedAt[s]!),
          over(from, n, (s) => at.charge[s]! - at.reserve[s]!),
          over(from, n, (s) => at.ship[s]! - at.charge[s]!),
        ]
      : [];
  return {
    unit,
    scheduled: perSecond,
    n,
    total: summarize(total),
    send: over(from, n, (s) => sends.resolvedAt[s]! - sends.sentAt[s]!),
    hops,
    parts: breakdown(app, unit, from, n),
    sentPerSec: rateOf(sends.sentAt.slice(from, from + n)),
    completedPerSec: rateOf(done.slice(from, from + n)),
    over: total.filter((t) => t > TARGET.p99).length,
    relay: relaySince(app, relay0),
    blockedMs: blocked.ms - blocked0,
    load: load(),
  };
}

// ---- phase: statements per unit (sequential, counted by shape) ---------------------------------------------------

/** `n` units one after another, every statement counted by shape: the round trips one unit costs, relay included. */
async function counted(app: App, unit: Unit, n: number): Promise<StatementCount & { n: number }> {
  const from = take(sendsOf(unit), n);
  const counter = countStatements(true);
  await closedLoop(1, n, async (i) => {
    await fire(app, unit, from + i);
    await within(app.commits.when(DONE[unit], from + i), STUCK_MS, `${unit} ${from + i} completed`);
  });
  // The relay marks a batch sent after its confirm, which can come after the delivery ran: wait for it, counted.
  await app.mediator.ports.relay!.drain(10_000);
  return { ...counter.stop(), n };
}

// ---- checks ------------------------------------------------------------------------------------------------------

/** Rows of `table` counted per distinct value of `columns` (`n` a number, the columns as read). */
async function countBy(db: Knex, table: string, columns: readonly string[]) {
  const rows = (await db(table)
    .select(...columns)
    .count({ n: '*' })
    .groupBy(...columns)) as Array<Record<string, string>>;
  return rows.map((row) => ({ values: row, n: Number(row.n) }));
}

/** Every send ok, every process completed once, every effect written once, every message sent and consumed. */
async function verify(app: App, db: Knex): Promise<string> {
  for (const [what, s] of [['checkout', checkouts] as const, ['enqueue', jobs] as const])
    check(s.failures === 0, `${s.failures} ${what} sends failed, first: ${s.firstFailure}`);
  const [p, j] = [checkouts.next, jobs.next];
  await app.mediator.ports.relay!.drain(10_000);
  await within(app.source.idle(), 30_000, 'the job queues idle');
  const states = await countBy(db, T.processes, ['state']);
  check(
    states.length === 1 && states[0]!.values.state === 'completed' && states[0]!.n === p,
    `processes by state ${JSON.stringify(states)}, expected ${p} completed`,
  );
  const effects = await countBy(db, `${schema}.${EFFECTS_TABLE}`, ['kind']);
  for (const [kind, expected] of [
    ['reserve', p],
    ['charge', p],
    ['ship', p],
    ['job', j],
  ] as const) {
    const n = effects.find((e) => e.values.kind === kind)?.n ?? 0;
    check(n === expected, `${n} ${kind} rows, expected ${expected}`);
  }
  const jobStates = await countBy(db, T.jobs, ['type', 'state']);
  const expected = [`usecasecore.ProcessStep/succeeded/${STEPS * p}`, `BenchJob/succeeded/${j}`];
  const got = jobStates.map((r) => `${r.values.type}/${r.values.state}/${r.n}`).sort();
  check(JSON.stringify(got) === JSON.stringify(expected.sort()), `jobs ${got.join(', ')}; expected ${expected}`);
  const [outbox] = await db(T.outbox).select(
    db.raw('count(*) FILTER (WHERE sent_at IS NOT NULL)::int AS sent'),
    db.raw('count(*) FILTER (WHERE sent_at IS NULL)::int AS unsent'),
    db.raw('count(*) FILTER (WHERE parked_at IS NOT NULL)::int AS parked'),
  );
  check(
    outbox.sent === STEPS * p + j && outbox.unsent === 0 && outbox.parked === 0,
    `outbox ${JSON.stringify(outbox)}, expected ${STEPS * p + j} sent`,
  );
  const { runs, commits, compensations } = app.commits;
  check(compensations === 0, `${compensations} compensations ran`);
  check(app.provider.calls >= p, `${app.provider.calls} provider calls for ${p} checkouts`);
  return (
    `${p} checkouts and ${j} jobs (warm-ups included), every send ok; ${p} processes \`completed\` (no other ` +
    `state); ${p} × 3 step effect rows and ${j} job rows (one each, primary key); jobs table: ${got.join(', ')}; ` +
    `outbox ${outbox.sent} sent, 0 unsent, 0 parked; job queues idle; 0 compensations; handler attempts rolled ` +
    `back and retried: ${runs - commits}`
  );
}

// ---- report ------------------------------------------------------------------------------------------------------

interface Results {
  readonly versions: { readonly pg: string; readonly rabbit: string; readonly syncCommit: string };
  readonly loadBefore: string;
  readonly counts: { readonly checkout: StatementCount & { n: number }; readonly job: StatementCount & { n: number } };
  readonly checkoutLatency: Latency;
  readonly jobLatency: Latency;
  readonly trials: readonly Trial[];
  readonly checks: string;
}

function cpuModel(): string {
  try {
    return /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? '?';
  } catch {
    return os.cpus()[0]?.model ?? '?';
  }
}

const row = (label: string, s: Summary) =>
  `| ${label} | ${s.p50.toFixed(1)} | ${s.p90.toFixed(1)} | **${s.p99.toFixed(1)}** | ${s.max.toFixed(1)} ` +
  `| ${s.mean.toFixed(1)} | ${s.n} |`;

/** Relay work per message moved: claims (empty ones apart) and rows per batch. */
function relayLine(p: PhaseTimes): string {
  const batches = Math.max(1, p.marks);
  return (
    `${p.claimed} messages in ${p.marks} batches (${(p.claimed / batches).toFixed(1)} per batch); ` +
    `${p.claims} claims, ${p.emptyClaims} of them empty (${(p.claims / Math.max(1, p.claimed)).toFixed(2)} claims ` +
    `per message)`
  );
}

function setupLines(r: Results): string[] {
  return [
    `Run ${new Date().toISOString()} · Node ${process.version} · ${os.availableParallelism()} CPUs (nproc) · ` +
      `${cpuModel()} · linux ${os.release()} · load average (1, 5, 15 min) before: ${r.loadBefore}, after: ${load()}`,
    `RabbitMQ ${r.versions.rabbit} and ${r.versions.pg} (synchronous_commit=${r.versions.syncCommit}) on the same ` +
      'machine, over loopback.',
    '',
    `One service: \`knexModule\` on a knex pool of ${POOL} + \`amqpModule\` (quorum queues), ` +
      '`recommendedStack({ inbox: true })`, `processes([BenchCheckout])` (reserve → charge (an instant in-process ' +
      'provider) → ship, each step one INSERT in its transaction) and a plain job `BenchJob` (the same INSERT), ' +
      `served by \`work()\` (prefetch ${PREFETCH ?? 'default, 16'}); the module's relay started with ` +
      `\`relay.start(${POLL_MS})\`${WAKE ? ' and woken after each commit' : ', **no wake after commit** (poll only)'}.`,
    '',
  ];
}

function latencyLines(r: Results): string[] {
  const c = r.checkoutLatency,
    j = r.jobLatency;
  const backlog = (l: Latency) =>
    l.completedPerSec < 0.95 * l.sentPerSec ? ' — **fell behind: the latencies measure a backlog**' : '';
  return [
    `### Start → completed at ${c.scheduled} processes/s (open loop, ${c.n} processes, after ${WARM_N} warm-up)`,
    '',
    '| measure (ms) | p50 | p90 | p99 | max | mean | n |',
    '|--------------|----:|----:|----:|----:|-----:|--:|',
    row('**start** (before `send(BenchCheckout)`) → **completed** (commit of the last step)', c.total),
    row('… start send (before send → resolved: record + first step job committed)', c.send),
    row('… hop 1: start resolved → Reserve step committed', c.hops[0]!),
    row('… hop 2: Reserve committed → Charge step committed', c.hops[1]!),
    row('… hop 3: Charge committed → Ship step committed (= process completed)', c.hops[2]!),
    row("… each hop (pooled): previous commit → relay has the broker's confirm", c.parts.relay),
    row(
      '… each hop (pooled): confirm → step handler began (delivery, job taken, BEGIN, process locked)',
      c.parts.deliver,
    ),
    row('… each hop (pooled): step handler began → committed (write, process saved, next step staged)', c.parts.commit),
    row(`plain job at ${j.scheduled} jobs/s: before \`send(EnqueueBenchJob)\` → job committed`, j.total),
    row("… enqueue send resolved → relay has the broker's confirm", j.parts.relay),
    row('… confirm → job handler began', j.parts.deliver),
    row('… job handler began → committed', j.parts.commit),
    '',
    `Processes: sent ${c.sentPerSec.toFixed(0)}/s, completed ${c.completedPerSec.toFixed(0)}/s${backlog(c)}; ` +
      `${c.over} of ${c.n} took > ${TARGET.p99} ms; broker blocked ${(c.blockedMs / 1_000).toFixed(2)} s; load ` +
      `after: ${c.load}. Relay: ${relayLine(c.relay)}.`,
    `Jobs: sent ${j.sentPerSec.toFixed(0)}/s, completed ${j.completedPerSec.toFixed(0)}/s${backlog(j)}; load after: ` +
      `${j.load}. Relay: ${relayLine(j.relay)}.`,
    '',
    '| target | measured | met? |',
    '|--------|---------:|------|',
    `| p50 ≤ ${TARGET.p50} ms | ${ms(c.total.p50)} | ${c.total.p50 <= TARGET.p50 ? 'yes' : '**no**'} |`,
    `| p99 ≤ ${TARGET.p99} ms | ${ms(c.total.p99)} | ${c.total.p99 <= TARGET.p99 ? 'yes' : '**no**'} |`,
    '',
  ];
}

function saturationLines(r: Results): string[] {
  const out = [
    `### Saturation: ${IN_FLIGHT} in flight (closed loop: each starter waits for completion, then starts the next)`,
    '',
    '| run | units | elapsed | **units/s** | worker runs/s | pg statements per unit | relay claims per ' +
      'message | CPU ms per unit: node, pg | CPU cores: node + pg + rabbit | broker blocked | load after |',
    '|-----|------:|--------:|------:|------:|------:|------:|------:|------:|------:|------|',
  ];
  for (const [i, t] of r.trials.entries()) {
    const run = i < 2 ? 'warm-up' : `rep ${Math.floor(i / 2)}`;
    const what = `${run} ${t.unit === 'checkout' ? 'processes' : 'plain jobs'}`;
    out.push(
      `| ${what} | ${t.units} | ${(t.elapsedMs / 1_000).toFixed(2)} s ` +
        `| **${rate(t.perSec)}** | ${rate(t.runsPerSec)} | ${t.statements.toFixed(1)} ` +
        `| ${(t.relay.claims / Math.max(1, t.relay.claimed)).toFixed(2)} ` +
        `| ${t.nodeMs.toFixed(1)}, ${t.pgMs.toFixed(1)} | ${t.cpu} ` +
        `| ${(t.blockedMs / 1_000).toFixed(2)} s | ${t.load} |`,
    );
  }
  const timed = r.trials.slice(2);
  const med = (unit: Unit, f: (t: Trial) => number) => median(timed.filter((t) => t.unit === unit).map(f));
  const [perSec, stepRuns, jobsPerSec] = [
    med('checkout', (t) => t.perSec),
    med('checkout', (t) => t.runsPerSec),
    med('job', (t) => t.perSec),
  ];
  out.push(
    '',
    `Median of ${REPS}: **${rate(perSec)} processes/s = ${rate(stepRuns)} step runs/s**; plain jobs ` +
      `**${rate(jobsPerSec)} jobs/s**. **Step runs/s ÷ jobs/s = ${(stepRuns / jobsPerSec).toFixed(2)}×** ` +
      `(processes/s ÷ jobs/s = ${(perSec / jobsPerSec).toFixed(2)}×).`,
    '',
    'A process is one start send and 3 step jobs; a plain job one enqueue send and the job: step runs/s ÷ jobs/s ' +
      'compares what one trip through relay → RabbitMQ → `work()` costs as a step and as a plain job. Statements: ' +
      'node-postgres queries per unit, relay included. CPU: this process from `process.cpuUsage()`; pg and rabbit ' +
      'from /proc for every postgres and RabbitMQ process, so other users of the same servers count too.',
    '',
  );
  return out;
}

function statementLines(r: Results): string[] {
  const line = (label: string, c: StatementCount & { n: number }, per: number) => {
    const shapes = Object.entries(c.byShape)
      .sort(([, a], [, b]) => b - a)
      .map(([shape, n]) => `${shape} ×${(n / per).toFixed(2).replace(/\.00$/, '')}`);
    return `- ${label}: **${(c.total / per).toFixed(1)}** — ${shapes.join(', ')}`;
  };
  const { checkout, job } = r.counts;
  return [
    `### Statements (pg \`Client#query\` calls, relay included; ${checkout.n} checkouts, then ${job.n} jobs, one at ` +
      'a time)',
    '',
    line('per process (start send + 3 step jobs)', checkout, checkout.n),
    line('per step (the same ÷ 3)', checkout, checkout.n * STEPS),
    line('per plain job (enqueue send + the job)', job, job.n),
    '',
  ];
}

function report(r: Results): string {
  return [
    ...setupLines(r),
    ...latencyLines(r),
    ...saturationLines(r),
    ...statementLines(r),
    `Checks: ${r.checks}.`,
    '',
    `Took ${((performance.now() - started) / 1_000).toFixed(0)} s.`,
  ].join('\n');
}

// ---- main --------------------------------------------------------------------------------------------------------

async function versionsOf(db: Knex, app: App): Promise<Results['versions']> {
  const { rows } = await db.raw('SELECT version() AS v, current_setting(?) AS s', ['synchronous_commit']);
  const model = await app.connection.model('publish');
  const props = (model.connection as unknown as { serverProperties?: { version?: string } }).serverProperties;
  return { pg: String(rows[0].v).split(' on ')[0]!, syncCommit: rows[0].s, rabbit: String(props?.version ?? '?') };
}

/** The phases, in order: warm-up, statements, latency, saturation repetitions (checkouts and jobs alternating). */
async function phases(app: App, db: Knex): Promise<Results> {
  const loadBefore = load();
  const versions = await versionsOf(db, app);
  const blocked = new BlockedClock(app.connection);
  const trials: Trial[] = [];
  trials.push(await saturation(app, blocked, 'checkout', WARM_N, 16));
  trials.push(await saturation(app, blocked, 'job', STEPS * WARM_N, 16));
  log(`warm-up: ${rate(trials[0]!.perSec)} processes/s, ${rate(trials[1]!.perSec)} jobs/s (load ${load()})`);
  const counts = { checkout: await counted(app, 'checkout', COUNT_N), job: await counted(app, 'job', COUNT_N) };
  log(`statements: ${(counts.checkout.total / COUNT_N).toFixed(1)} per process, ${counts.job.total / COUNT_N} per job`);
  const checkoutLatency = await latency(app, blocked, 'checkout', RATE, LATENCY_N);
  const c = checkoutLatency.total;
  log(`latency at ${RATE}/s: p50 ${ms(c.p50)} p90 ${ms(c.p90)} p99 ${ms(c.p99)} max ${ms(c.max)} (load ${load()})`);
  const jobLatency = await latency(app, blocked, 'job', JOB_RATE, JOB_LATENCY_N);
  log(`job latency at ${JOB_RATE}/s: p50 ${ms(jobLatency.total.p50)} p99 ${ms(jobLatency.total.p99)}`);
  for (let rep = 1; rep <= REPS; rep++) {
    for (const unit of ['checkout', 'job'] as const) {
      const t = await saturation(app, blocked, unit, unit === 'checkout' ? SAT_N : STEPS * SAT_N);
      trials.push(t);
      log(`rep ${rep} ${unit}: ${rate(t.perSec)}/s (${rate(t.runsPerSec)} runs/s; cores ${t.cpu}; load ${t.load})`);
    }
  }
  const checks = await verify(app, db);
  return { versions, loadBefore, counts, checkoutLatency, jobLatency, trials, checks };
}

async function main(): Promise<void> {
  const db = knex({ client: 'pg', connection: DB_URL, pool: { min: 2, max: POOL }, acquireConnectionTimeout: 10_000 });
  let app: App | undefined;
  let output: string | undefined;
  try {
    await migrate(db, { schema });
    await db.schema.withSchema(schema).createTable(EFFECTS_TABLE, (t) => {
      t.text('kind').notNullable();
      t.integer('seq').notNullable();
      t.primary(['kind', 'seq']);
    });
    log(`schema ${schema}, broker prefix ${topology.prefix}; load ${load()}`);
    const options = { db, schema, url: AMQP_URL, exchanges: topology.exchanges, pollMs: POLL_MS, wake: WAKE };
    app = await startApp({ ...options, prefetch: PREFETCH });
    output = report(await phases(app, db));
  } finally {
    await cleanup(db, app);
  }
  process.stdout.write(`${output}\n`);
}

/** Stops the service, deletes the queues and exchanges and drops the schema (unless BENCH_PROCESS_KEEP=1). */
async function cleanup(db: Knex, app: App | undefined): Promise<void> {
  await app?.close().catch((error: Error) => log(`could not stop the service: ${error.message}`));
  if (KEEP) {
    log(`kept schema ${schema} and broker objects ${topology.prefix}.*`);
  } else {
    await deleteTopology(AMQP_URL, topology.exchanges, app?.queues ?? []).then(
      (deleted) => log(`deleted ${deleted.join(', ')}`),
      (error: Error) => log(`could not delete the broker objects of ${topology.prefix}: ${error.message}`),
    );
    await db.raw('DROP SCHEMA IF EXISTS ?? CASCADE', [schema]).then(
      () => log(`dropped schema ${schema}`),
      (error: Error) => log(`could not drop ${schema}: ${error.message}`),
    );
  }
  await db.destroy();
}

await main();
