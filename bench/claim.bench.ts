// The knex outbox's claim() latency on Postgres with 100,000 rows scheduled a day ahead, beside the same claims with
// none scheduled (issue 19, point 3: "Schedules off the claim path"; target: claim p99 ≤ 2 ms with 100,000 scheduled).
// Delayed jobs wait in the outbox table until their `available_at`: if a claim has to walk past them to find the due
// rows, every relay poll pays for every scheduled job, and a backlog of schedules slows the delivery of everything.
//
//   node .ci/node.mjs tsx bench/claim.bench.ts   # a Markdown report on stdout (progress on stderr)
//
// DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test), as the other benches. Knobs: BENCH_ROUNDS (20),
// BENCH_CLAIM_SCHEDULED (100000: scenario B's scheduled rows), BENCH_CLAIM_DUE (1000 due rows per round),
// BENCH_CLAIM_LIMIT (100: claim(limit)).
//
// Each scenario works in a fresh schema (CREATE SCHEMA, the library's migrate(), DROP at the end, also after a
// failure) and runs the same code: (A) none scheduled; (B) the scheduled rows inserted first (so their positions come
// before every due row), available a day from now, then ANALYZE. Then a warm-up round and BENCH_ROUNDS timed rounds
// of: insert the due rows (half with an aggregate id out of 100, half without), then claim(limit) → markSent(ids)
// until a claim returns none. Each claim() call is timed on its own (process.hrtime.bigint); the final, empty claim
// of a round is reported apart. The outbox uses the real clock (its default), as a relay does.
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import knex, { type Knex } from 'knex';
import { KnexOutbox, KnexUnitOfWork, migrate, tables } from '../adapters/knex/index.js';
import { BENCH_DB_URL, check, envNumber } from './harness.js';
import { quantile } from './pg-common.js';

const ROUNDS = envNumber('BENCH_ROUNDS', 20);
const SCHEDULED = envNumber('BENCH_CLAIM_SCHEDULED', 100_000);
const DUE = envNumber('BENCH_CLAIM_DUE', 1_000);
const LIMIT = envNumber('BENCH_CLAIM_LIMIT', 100);
const AGGREGATES = 100;
const TARGET_P99_MS = 2;
const DUE_TYPE = 'bench.due';
const SCHEDULED_TYPE = 'bench.scheduled';
const T = tables(); // unqualified: each scenario's knex has its own schema on the search path

const log = (line: string) => process.stderr.write(`${line}\n`);
const elapsedMs = (start: bigint) => Number(process.hrtime.bigint() - start) / 1e6;

interface Drained {
  /** ms of each claim() that returned rows. */
  readonly claims: number[];
  /** ms of the final claim() that returned none. */
  readonly empty: number;
  readonly rows: number;
}

interface ScenarioResult {
  readonly id: string;
  readonly label: string;
  readonly scheduled: number;
  readonly claims: number[];
  readonly empties: number[];
  /** Scheduled rows still unsent and never claimed after the run. */
  readonly scheduledLeft: number;
  readonly insertScheduledMs: number;
}

/** Runs `fn` with a knex instance on a fresh, migrated schema; the schema is dropped afterwards, also on failure. */
async function inFreshSchema<R>(admin: Knex, fn: (db: Knex) => Promise<R>): Promise<R> {
  const schema = `claimbench_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
  await admin.raw('CREATE SCHEMA ??', [schema]);
  const db = knex({ client: 'pg', connection: BENCH_DB_URL, searchPath: [schema], pool: { min: 0, max: 2 } });
  try {
    await migrate(db); // the library's tables, in this schema (search path)
    return await fn(db);
  } finally {
    await db.destroy();
    await admin
      .raw('DROP SCHEMA IF EXISTS ?? CASCADE', [schema])
      .catch((e: Error) => log(`could not drop ${schema}: ${e.message}`));
  }
}

/** `n` job rows available a day from now, in one statement. */
async function insertScheduled(db: Knex, n: number): Promise<void> {
  await db.raw(
    `INSERT INTO ?? (id, kind, type, payload, occurred_at, aggregate_id, headers, available_at)
     SELECT 'scheduled-' || g, 'job', ?, jsonb_build_object('n', g), now(), NULL, '{}'::jsonb,
            now() + interval '1 day'
     FROM generate_series(1, ?::int) AS g`,
    [T.outbox, SCHEDULED_TYPE, n],
  );
}

/** `DUE` event rows available now (available_at NULL): the even ones with an aggregate id out of `AGGREGATES`. */
async function insertDue(db: Knex, round: string): Promise<void> {
  await db.raw(
    `INSERT INTO ?? (id, kind, type, payload, occurred_at, aggregate_id, headers, available_at)
     SELECT ? || '-' || g, 'event', ?, jsonb_build_object('n', g), now(),
            CASE WHEN g % 2 = 0 THEN 'agg-' || ((g / 2) % ?::int) END, '{}'::jsonb, NULL
     FROM generate_series(1, ?::int) AS g`,
    [T.outbox, round, DUE_TYPE, AGGREGATES, DUE],
  );
}

/** claim → markSent until a claim returns none, each claim timed; checks no scheduled row is handed out. */
async function drain(outbox: KnexOutbox): Promise<Drained> {
  const claims: number[] = [];
  let rows = 0;
  for (;;) {
    const start = process.hrtime.bigint();
    const claimed = await outbox.claim(LIMIT);
    const ms = elapsedMs(start);
    if (claimed.length === 0) return { claims, empty: ms, rows };
    check(
      claimed.every((m) => m.type === DUE_TYPE),
      `a claim handed out a row that is not due: ${claimed.find((m) => m.type !== DUE_TYPE)?.id}`,
    );
    claims.push(ms);
    rows += claimed.length;
    await outbox.markSent(claimed.map((m) => m.id));
  }
}

/** One scenario in its own schema: the scheduled rows (if any), ANALYZE, a warm-up round, then the timed rounds. */
async function runScenario(admin: Knex, id: string, label: string, scheduled: number): Promise<ScenarioResult> {
  return inFreshSchema(admin, async (db) => {
    const outbox = new KnexOutbox(new KnexUnitOfWork(db), T.outbox); // the real clock (Date), the default
    const insertStart = process.hrtime.bigint();
    if (scheduled > 0) await insertScheduled(db, scheduled);
    const insertScheduledMs = elapsedMs(insertStart);
    await db.raw('ANALYZE ??', [T.outbox]);
    log(`${id}: ${scheduled} scheduled rows inserted in ${insertScheduledMs.toFixed(0)} ms; analyzed`);
    const claims: number[] = [];
    const empties: number[] = [];
    for (let round = 0; round <= ROUNDS; round++) {
      await insertDue(db, `${id}-r${round}`);
      const drained = await drain(outbox);
      check(drained.rows === DUE, `${id} round ${round}: ${drained.rows} rows claimed of ${DUE} due`);
      if (round === 0) {
        log(`${id}: warm-up round done (${drained.claims.length} claims, not counted)`);
        continue;
      }
      claims.push(...drained.claims);
      empties.push(drained.empty);
      const p50 = quantile(
        [...drained.claims].sort((a, b) => a - b),
        0.5,
      );
      log(`${id} round ${round}/${ROUNDS}: ${drained.claims.length} claims, p50 ${p50.toFixed(2)} ms`);
    }
    const { rows } = await db.raw(
      `SELECT count(*) AS n FROM ?? WHERE type = ? AND sent_at IS NULL AND claimed_until IS NULL AND attempts = 0`,
      [T.outbox, SCHEDULED_TYPE],
    );
    const scheduledLeft = Number((rows as Array<{ n: string }>)[0]!.n);
    check(scheduledLeft === scheduled, `${id}: ${scheduledLeft} of ${scheduled} scheduled rows left untouched`);
    return { id, label, scheduled, claims, empties, scheduledLeft, insertScheduledMs };
  });
}

interface Summary {
  readonly n: number;
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
}

function summarize(values: readonly number[]): Summary {
  const sorted = [...values].sort((a, b) => a - b);
  return { n: sorted.length, p50: quantile(sorted, 0.5), p99: quantile(sorted, 0.99), max: sorted.at(-1) ?? NaN };
}

const ms = (v: number) => `${v.toFixed(2)} ms`;
const loadavg = () =>
  os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' / ');

/** The Markdown report: one row per scenario, the ratios B/A and the target. */
function report(results: readonly ScenarioResult[], meta: { server: string; loadStart: string }): string {
  const out: string[] = [];
  out.push(
    `Run ${new Date().toISOString()} · Node ${process.version} · ${os.availableParallelism()} CPUs (nproc) · ` +
      `${os.cpus()[0]?.model ?? 'unknown CPU'} · PostgreSQL ${meta.server}`,
  );
  out.push(
    `${ROUNDS} timed rounds per scenario (after 1 warm-up round) of ${DUE} due rows (half with an aggregate id out ` +
      `of ${AGGREGATES}), each drained by claim(${LIMIT}) → markSent(ids); load average (1 / 5 / 15 min) at start ` +
      `${meta.loadStart}, at end ${loadavg()}`,
  );
  out.push('');
  out.push('| scenario | scheduled rows | claims measured | p50 | p99 | max | final empty claim: p50 / max |');
  out.push('|----------|---------------:|----------------:|----:|----:|----:|------------------------------:|');
  const summaries = results.map((r) => ({ r, s: summarize(r.claims), e: summarize(r.empties) }));
  for (const { r, s, e } of summaries) {
    out.push(
      `| ${r.id}: ${r.label} | ${r.scheduled.toLocaleString('en')} | ${s.n} | ${ms(s.p50)} | ${ms(s.p99)} | ` +
        `${ms(s.max)} | ${ms(e.p50)} / ${ms(e.max)} (${e.n}) |`,
    );
  }
  const [a, b] = summaries;
  if (a && b) {
    out.push('');
    out.push(
      `- B ÷ A: p50 **${(b.s.p50 / a.s.p50).toFixed(2)}×**, p99 **${(b.s.p99 / a.s.p99).toFixed(2)}×** ` +
        `(final empty claim p50 ${(b.e.p50 / a.e.p50).toFixed(2)}×)`,
    );
    out.push(
      `- target claim p99 ≤ ${TARGET_P99_MS} ms with ${b.r.scheduled.toLocaleString('en')} scheduled: ` +
        `${ms(b.s.p99)} — ${b.s.p99 <= TARGET_P99_MS ? '**met**' : '**not met**'}`,
    );
  }
  for (const { r } of summaries) {
    out.push(
      `- ${r.id}: scheduled rows still unsent and never claimed at the end: ${r.scheduledLeft.toLocaleString('en')}` +
        ` of ${r.scheduled.toLocaleString('en')}` +
        (r.scheduled > 0 ? ` (bulk insert took ${r.insertScheduledMs.toFixed(0)} ms)` : ''),
    );
  }
  return out.join('\n');
}

// ---- run ------------------------------------------------------------------------------------------------------

const admin = knex({ client: 'pg', connection: BENCH_DB_URL, pool: { min: 0, max: 1 } });
try {
  const loadStart = loadavg();
  const server = (await admin.raw('SHOW server_version')).rows[0].server_version as string;
  const results: ScenarioResult[] = [];
  results.push(await runScenario(admin, 'A', 'none scheduled', 0));
  results.push(await runScenario(admin, 'B', 'scheduled a day ahead, before the due rows', SCHEDULED));
  console.log(report(results, { server, loadStart }));
} finally {
  await admin.destroy();
}
