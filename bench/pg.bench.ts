// The seven-middleware pipeline on Postgres vs a hand-written knex transaction vs raw pg, doing the same writes.
//
//   npm run bench:pg            # ~2.5 min, prints a Markdown report to stdout (progress on stderr)
//
// DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test). Knobs: BENCH_PG_SECONDS (4) per timed run,
// BENCH_PG_REPS (3), BENCH_PG_WARM_MS (1500), BENCH_PG_CALLERS (16), BENCH_PG_POOL (16),
// BENCH_PG_ONLY (comma-separated implementation ids), BENCH_PG_KEEP=1 (keep the schema for inspection),
// BENCH_PG_SEAL_EVERY_MS (200; the audit sealer's period — a large value leaves sealing to the end),
// BENCH_PG_CPU_PROF=<dir> (each worker writes a .cpuprofile there; profiling slows the workers down).
//
// Works in a fresh schema (CREATE SCHEMA, migrate(), drop at the end). Every implementation runs in a worker process
// of its kind (bench/pg-worker.ts), and the audit sealer in one of its own (bench/pg-sealer.ts: where a deployment
// runs it, in the relay process), so each one's CPU is measured apart. The parent runs one (scenario ×
// implementation) at a time, interleaved per repetition, and measures the postgres processes' CPU time around each.
import { fork, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import knex from 'knex';
import { KnexAuditStore, KnexUnitOfWork, migrate, tables } from '../adapters/knex/index.js';
import { verifyAuditChain } from '../lib/audit/index.js';
import { BENCH_DB_URL, check, envNumber } from './harness.js';
import {
  IMPLS,
  INITIAL_QTY,
  SCENARIOS,
  STOCK,
  TAKE,
  createStock,
  median,
  postgresCpu,
  postgresCpuDelta,
  rowOf,
  type FromSealer,
  type FromWorker,
  type ImplId,
  type RunRequest,
  type RunResult,
  type ScenarioId,
  type SealLag,
  type ToSealer,
  type ToWorker,
  type WorkerKind,
} from './pg-common.js';

const env = envNumber;
const URL_ = BENCH_DB_URL;
const SECONDS = env('BENCH_PG_SECONDS', 4);
const REPS = env('BENCH_PG_REPS', 3);
const WARM_MS = env('BENCH_PG_WARM_MS', 1_500);
const CALLERS = env('BENCH_PG_CALLERS', 16);
const POOL = env('BENCH_PG_POOL', 16);
const ONLY = process.env.BENCH_PG_ONLY ? new Set(process.env.BENCH_PG_ONLY.split(',').map((s) => s.trim())) : undefined;
const KEEP = env('BENCH_PG_KEEP', 0) !== 0;
const CPU_PROF = process.env.BENCH_PG_CPU_PROF;
const COUNT_OPS_PER_CALLER = 20;
const SEAL_EVERY_MS = env('BENCH_PG_SEAL_EVERY_MS', 200);

const impls = IMPLS.filter((i) => !ONLY || ONLY.has(i.id));
check(impls.length > 0, `BENCH_PG_ONLY matches no implementation (ids: ${IMPLS.map((i) => i.id).join(', ')})`);
const log = (line: string) => process.stderr.write(`${line}\n`);
const T = tables();

// ---- workers --------------------------------------------------------------------------------------------------

interface Child<To, From> {
  readonly proc: ChildProcess;
  request(message: To): Promise<From>;
}
type Worker = Child<ToWorker, FromWorker>;

/** Forks `file` (under tsx) and talks to it one request at a time; an `error` reply rejects. */
function startChild<To, From extends { type: string }>(file: string, name: string): Child<To, From> {
  const proc = fork(fileURLToPath(new URL(file, import.meta.url)), [name], {
    execArgv: ['--import', 'tsx', ...(CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${CPU_PROF}`] : [])],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  let pending: { resolve: (m: From) => void; reject: (e: Error) => void } | undefined;
  proc.on('message', (m: From) => {
    const p = pending;
    pending = undefined;
    p?.resolve(m);
  });
  proc.on('exit', (code) => {
    const p = pending;
    pending = undefined;
    p?.reject(new Error(`${name} exited (${code})`));
  });
  return {
    proc,
    request(message) {
      return new Promise<From>((resolve, reject) => {
        pending = { resolve, reject };
        proc.send(message as object);
      }).then((m) => {
        if (m.type === 'error') throw new Error(`${name}: ${(m as unknown as { message: string }).message}`);
        return m;
      });
    },
  };
}

// ---- run ------------------------------------------------------------------------------------------------------

const schema = `pgbench_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
const admin = knex({ client: 'pg', connection: URL_, pool: { min: 0, max: 1 } });
const db = knex({ client: 'pg', connection: URL_, searchPath: [schema], pool: { min: 0, max: 2 } });
const workers = new Map<WorkerKind, Worker>();
/** Seals the ucc rows' audit chain beside the app, as the relay process does (bench/pg-sealer.ts). */
let sealer: Child<ToSealer, FromSealer> | undefined;
const successes = new Map<string, number>(); // per stock row, over every run (warm-up and counting included)
const opsByImpl = new Map<ImplId, number>();
const failedByImpl = new Map<ImplId, { count: number; first: string | undefined }>();

interface Timed {
  result: RunResult;
  pgCpuUs: number;
  /** The sealer process's CPU and sealing lag during a ucc run. */
  sealing?: { cpuUs: number; sealLag: SealLag };
}
const timed = new Map<string, Timed[]>(); // `${scenario}/${impl}` → one per repetition
const counted = new Map<string, RunResult>();

function account(impl: ImplId, r: RunResult): void {
  for (const [row, n] of Object.entries(r.perRow)) successes.set(row, (successes.get(row) ?? 0) + n);
  opsByImpl.set(impl, (opsByImpl.get(impl) ?? 0) + r.ok);
  if (r.failed > 0) {
    const f = failedByImpl.get(impl) ?? { count: 0, first: undefined };
    f.count += r.failed;
    f.first ??= r.firstError;
    failedByImpl.set(impl, f);
  }
}

async function runOn(impl: ImplId, request: Omit<RunRequest, 'type' | 'impl' | 'callers'>): Promise<Timed> {
  const worker = workers.get(IMPLS.find((i) => i.id === impl)!.worker)!;
  const sealing = impl.startsWith('ucc') ? sealer : undefined;
  await sealing?.request({ type: 'mark' });
  const before = postgresCpu();
  const result = (await worker.request({ type: 'run', impl, callers: CALLERS, ...request })) as RunResult;
  const pgCpuUs = postgresCpuDelta(before, postgresCpu());
  const sealed = (await sealing?.request({ type: 'measure' })) as Extract<FromSealer, { type: 'measured' }> | undefined;
  account(impl, result);
  return { result, pgCpuUs, ...(sealed ? { sealing: { cpuUs: sealed.cpuUs, sealLag: sealed.sealLag } } : {}) };
}

const started = Date.now();
let serverVersion = '?',
  syncCommit = '?';
try {
  await admin.raw('CREATE SCHEMA ??', [schema]);
  serverVersion = (await admin.raw('SHOW server_version')).rows[0].server_version;
  syncCommit = (await admin.raw('SHOW synchronous_commit')).rows[0].synchronous_commit;
  await migrate(db); // the library's tables, in the run's schema (search path)
  await createStock(
    db,
    impls
      .flatMap((i) => SCENARIOS.flatMap((s) => Array.from({ length: CALLERS }, (_, c) => rowOf(i.id, s.id, c))))
      .filter((r, k, all) => all.indexOf(r) === k),
  );
  log(`schema ${schema} ready; starting workers`);

  for (const kind of new Set(impls.map((i) => i.worker))) {
    workers.set(kind, startChild<ToWorker, FromWorker>('./pg-worker.ts', kind));
  }
  await Promise.all([...workers.values()].map((w) => w.request({ type: 'init', url: URL_, schema, pool: POOL })));
  if (impls.some((i) => i.worker === 'ucc')) {
    sealer = startChild<ToSealer, FromSealer>('./pg-sealer.ts', 'sealer');
    await sealer.request({ type: 'init', url: URL_, schema, everyMs: SEAL_EVERY_MS });
  }

  // Round trips: a short counted run per (scenario × implementation), before anything is timed.
  for (const scenario of SCENARIOS) {
    for (const impl of impls) {
      const { result } = await runOn(impl.id, {
        scenario: scenario.id,
        opsPerCaller: COUNT_OPS_PER_CALLER,
        countQueries: true,
      });
      check(result.failed === 0, `${impl.id} failed ${result.failed} of its counted ops: ${result.firstError}`);
      counted.set(`${scenario.id}/${impl.id}`, result);
      log(`counted ${scenario.id}/${impl.id}: ${(result.queries! / result.ok).toFixed(2)} queries/op`);
    }
  }
  // Warm-up: every (scenario × implementation) once, untimed.
  for (const scenario of SCENARIOS)
    for (const impl of impls) await runOn(impl.id, { scenario: scenario.id, ms: WARM_MS });
  log('warmed up');
  // Timed: REPS repetitions; within one, every scenario × implementation, the implementation order rotated per rep.
  for (let rep = 0; rep < REPS; rep++) {
    for (const scenario of SCENARIOS) {
      const order = impls.map((_, k) => impls[(k + rep) % impls.length]!);
      for (const impl of order) {
        const t = await runOn(impl.id, { scenario: scenario.id, ms: SECONDS * 1000 });
        const key = `${scenario.id}/${impl.id}`;
        timed.set(key, [...(timed.get(key) ?? []), t]);
        log(
          `rep ${rep + 1} ${key}: ${(t.result.ok / (t.result.elapsedMs / 1000)).toFixed(0)} ops/s, p50 ${t.result.p50.toFixed(2)} ms, p99 ${t.result.p99.toFixed(2)} ms`,
        );
      }
    }
  }
  for (const w of workers.values()) await w.request({ type: 'close' }).catch(() => undefined);
  workers.clear();
  await sealer?.request({ type: 'close' }).catch(() => undefined);
  sealer = undefined;

  // ---- correctness ------------------------------------------------------------------------------------------
  const verdicts: string[] = [];
  // The sealer has stopped: seal what committed since its last run, so every chain is complete.
  const auditStore = new KnexAuditStore(new KnexUnitOfWork(db), T.audit, T.auditHeads);
  const lateSealed = await auditStore.seal();
  const count = async (sql: string, bindings: readonly unknown[]) =>
    Number((await db.raw(sql, bindings as never)).rows[0].n);
  for (const impl of impls) {
    const f = failedByImpl.get(impl.id);
    check(!f, `${impl.id}: ${f?.count} ops failed, first: ${f?.first}`);
    const rows: Array<{ id: string; qty: number }> = await db(STOCK).where('id', 'like', `${impl.id}/%`);
    for (const row of rows) {
      const taken = (successes.get(row.id) ?? 0) * TAKE;
      check(
        INITIAL_QTY - row.qty === taken,
        `${row.id}: qty went down by ${INITIAL_QTY - row.qty}, ${taken} successful takes reported`,
      );
    }
    const ok = opsByImpl.get(impl.id) ?? 0;
    const prefix = `${impl.id}/%`;
    const audits = await count(
      `SELECT count(*) n FROM ?? WHERE type = 'Take' AND outcome = 'ok' AND payload->>'id' LIKE ?`,
      [T.audit, prefix],
    );
    const auditsAll = await count(`SELECT count(*) n FROM ?? WHERE payload->>'id' LIKE ?`, [T.audit, prefix]);
    const outbox = await count(`SELECT count(*) n FROM ?? WHERE type = 'stock.taken' AND aggregate_id LIKE ?`, [
      T.outbox,
      prefix,
    ]);
    const keys = await count(`SELECT count(*) n FROM ?? WHERE key LIKE ? AND response IS NOT NULL`, [
      T.idempotency,
      prefix,
    ]);
    check(audits === ok && auditsAll === ok, `${impl.id}: ${audits} ok audit rows (${auditsAll} in all) for ${ok} ops`);
    check(outbox === ok, `${impl.id}: ${outbox} outbox rows for ${ok} ops`);
    check(keys === ok, `${impl.id}: ${keys} completed idempotency rows for ${ok} ops`);
    let chain = '';
    const tenants =
      impl.id === 'ucc'
        ? ['default']
        : impl.id === 'ucc-tenants'
          ? Array.from({ length: CALLERS }, (_, c) => `t${c}`)
          : impl.id === 'knex-ucc-sql'
            ? ['hand-chain']
            : [];
    if (tenants.length > 0) {
      let records = 0;
      for (const tenant of tenants) {
        const walk = verifyAuditChain(await auditStore.list({ tenant, order: 'asc' }));
        check(walk.ok, `${impl.id}: audit chain of ${tenant} broken: ${JSON.stringify(walk)}`);
        records += walk.count;
      }
      chain = `; audit hash chain${tenants.length > 1 ? 's' : ''} verified (${records} records in ${tenants.length} tenant${tenants.length > 1 ? 's' : ''})`;
    }
    verdicts.push(
      `- \`${impl.id}\`: ${ok} successful ops, 0 failed; every counter went down by exactly its successful takes (${rows.length} rows); ${audits} audit, ${outbox} outbox, ${keys} completed idempotency rows${chain}`,
    );
  }

  // ---- report -----------------------------------------------------------------------------------------------
  const seconds = ((Date.now() - started) / 1000).toFixed(0);
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  const out: string[] = [];
  out.push(
    `Run ${new Date().toISOString()} · Node ${process.version} · ${os.availableParallelism()} CPUs (nproc) · ${cpu} · ${os.platform()} ${os.release()} · PostgreSQL ${serverVersion} on the same machine (synchronous_commit=${syncCommit})`,
  );
  out.push(
    `${CALLERS} concurrent callers (async loops) per implementation on a pool of ${POOL} connections; each (scenario × implementation) timed for ${SECONDS} s, ${REPS} repetitions interleaved (implementation order rotated per repetition), medians shown; warm-up ${WARM_MS} ms each. Took ${seconds} s.`,
  );
  out.push('');
  out.push(
    '| scenario | implementation | ops/s (median; per rep) | p50 | p99 | round trips/op | checkouts/op | node CPU/op (app) | + sealer CPU/op | postgres CPU/op | CPU busy (node + pg, of 2) |',
  );
  out.push(
    '|----------|----------------|------------------------:|----:|----:|---------------:|-------------:|------------:|------------:|----------------:|----------:|',
  );
  const summary = new Map<string, { opsPerSec: number; p50: number; p99: number }>();
  for (const scenario of SCENARIOS) {
    for (const impl of impls) {
      const key = `${scenario.id}/${impl.id}`;
      const runs = timed.get(key) ?? [];
      const rates = runs.map((t) => t.result.ok / (t.result.elapsedMs / 1000));
      const s = {
        opsPerSec: median(rates),
        p50: median(runs.map((t) => t.result.p50)),
        p99: median(runs.map((t) => t.result.p99)),
      };
      summary.set(key, s);
      const nodeUs = median(runs.map((t) => (t.result.cpuUserUs + t.result.cpuSystemUs) / t.result.ok));
      const pgUs = median(runs.map((t) => t.pgCpuUs / t.result.ok));
      const sealUs = runs.some((t) => t.sealing)
        ? `${median(runs.map((t) => (t.sealing?.cpuUs ?? 0) / t.result.ok)).toFixed(0)} µs`
        : '—';
      const nodeCores = median(
        runs.map(
          (t) => (t.result.cpuUserUs + t.result.cpuSystemUs + (t.sealing?.cpuUs ?? 0)) / (t.result.elapsedMs * 1000),
        ),
      );
      const pgCores = median(runs.map((t) => t.pgCpuUs / (t.result.elapsedMs * 1000)));
      const c = counted.get(key)!;
      out.push(
        `| ${scenario.id} | \`${impl.id}\` ${impl.label} | **${s.opsPerSec.toFixed(0)}** (${rates.map((r) => r.toFixed(0)).join(' / ')}) | ${s.p50.toFixed(2)} ms | ${s.p99.toFixed(2)} ms | ${(c.queries! / c.ok).toFixed(2)} | ${(c.checkouts! / c.ok).toFixed(2)} | ${nodeUs.toFixed(0)} µs | ${sealUs} | ${pgUs.toFixed(0)} µs | ${nodeCores.toFixed(2)} + ${pgCores.toFixed(2)} |`,
      );
    }
  }
  out.push('');
  out.push('**Ratios (throughput, medians; > 1 means the first is faster)**');
  out.push('');
  const r = (a: ImplId, b: ImplId, scenario: ScenarioId) => {
    const x = summary.get(`${scenario}/${a}`),
      y = summary.get(`${scenario}/${b}`);
    return x && y ? x.opsPerSec / y.opsPerSec : undefined;
  };
  for (const scenario of SCENARIOS) {
    const parts: string[] = [];
    const vsKnex = r('ucc', 'knex', scenario.id);
    if (vsKnex !== undefined)
      parts.push(
        `pipeline ÷ hand-written knex **${vsKnex.toFixed(2)}×** (target ≥ 1.00×: ${vsKnex >= 1 ? '**met**' : '**not met**'})`,
      );
    const vsPg = r('ucc', 'pg', scenario.id);
    if (vsPg !== undefined) parts.push(`pipeline ÷ raw pg **${vsPg.toFixed(2)}×**`);
    const kp = r('knex', 'pg', scenario.id);
    if (kp !== undefined) parts.push(`knex ÷ pg ${kp.toFixed(2)}×`);
    const proto = r('knex-ucc-sql', 'knex', scenario.id);
    if (proto !== undefined) parts.push(`pipeline's SQL by hand ÷ knex ${proto.toFixed(2)}×`);
    const lib = r('ucc', 'knex-ucc-sql', scenario.id);
    if (lib !== undefined) parts.push(`pipeline ÷ its SQL by hand ${lib.toFixed(2)}×`);
    const ten = r('ucc-tenants', 'ucc', scenario.id);
    if (ten !== undefined) parts.push(`16 audit chains ÷ 1 chain ${ten.toFixed(2)}×`);
    out.push(`- ${scenario.label}: ${parts.join('; ')}`);
  }
  const lagLines = SCENARIOS.flatMap((scenario) =>
    impls.flatMap((impl) => {
      const lags = (timed.get(`${scenario.id}/${impl.id}`) ?? []).flatMap((t) => t.sealing?.sealLag ?? []);
      if (lags.length === 0) return [];
      const max = Math.max(...lags.map((l) => l.maxMs));
      return [
        `\`${impl.id}\` ${scenario.id}: **max ${max.toFixed(0)} ms** (median sample ${median(lags.map((l) => l.p50Ms)).toFixed(0)} ms, ${lags.reduce((n, l) => n + l.samples, 0)} samples; target < 1000 ms: ${max < 1000 ? 'met' : '**not met**'})`,
      ];
    }),
  );
  if (lagLines.length > 0) {
    out.push('');
    out.push(
      '**Audit sealed within** (commit → sealed under the load above: the age of the oldest committed, unsealed ' +
        `record, sampled every 50 ms during the timed runs, with \`auditSealer\` every ${SEAL_EVERY_MS} ms in a ` +
        'process of its own, as the relay runs it)',
    );
    out.push('');
    for (const line of lagLines) out.push(`- ${line}`);
  }
  out.push('');
  out.push(
    '**Statements per op (driver-level `pg.Client#query` calls, counted in a separate run of ' +
      `${CALLERS} × ${COUNT_OPS_PER_CALLER} ops, distinct rows)**`,
  );
  out.push('');
  for (const impl of impls) {
    const c = counted.get(`distinct/${impl.id}`)!;
    const shapes = Object.entries(c.byStatement!).map(
      ([shape, n]) => `${shape} ×${(n / c.ok).toFixed(2).replace(/\.00$/, '')}`,
    );
    out.push(`- \`${impl.id}\` (${(c.queries! / c.ok).toFixed(2)}): ${shapes.join(', ')}`);
  }
  out.push('');
  out.push('**Correctness (checked after the run, over every op of it)**');
  out.push('');
  out.push(...verdicts);
  out.push(`- audit records left unsealed when the workers stopped, sealed before the checks: ${lateSealed}`);
  console.log(out.join('\n'));
} finally {
  for (const w of workers.values()) w.proc.kill();
  sealer?.proc.kill();
  if (!KEEP)
    await admin
      .raw('DROP SCHEMA IF EXISTS ?? CASCADE', [schema])
      .catch((e: Error) => log(`could not drop ${schema}: ${e.message}`));
  else log(`kept schema ${schema}`);
  await db.destroy();
  await admin.destroy();
}
