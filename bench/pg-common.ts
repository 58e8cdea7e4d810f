// Shared by the Postgres pipeline bench (bench/pg.bench.ts) and its worker processes (bench/pg-worker.ts): the
// implementations' ids, the IPC messages, the stock table, percentiles, and CPU time of the postgres processes.
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Knex } from 'knex';

/** Every implementation, in report order. `worker` says which child process runs it. */
export const IMPLS = [
  { id: 'ucc', worker: 'ucc', label: 'usecasecore: 7 middleware, knex adapters' },
  { id: 'ucc-tenants', worker: 'ucc', label: 'usecasecore, one tenant per caller (16 audit chains) — diagnostic' },
  { id: 'knex-ucc-sql', worker: 'knex', label: "hand-written knex, the pipeline's 9 statements — diagnostic" },
  { id: 'knex', worker: 'knex', label: 'hand-written knex transaction' },
  { id: 'pg', worker: 'pg', label: 'raw pg (pg.Pool, hand-written SQL)' },
] as const;
export type ImplId = (typeof IMPLS)[number]['id'];
export type WorkerKind = (typeof IMPLS)[number]['worker'];

export const SCENARIOS = [
  { id: 'distinct', label: 'distinct rows (each caller its own row)' },
  { id: 'hot', label: 'one hot row (all callers on the same row)' },
] as const;
export type ScenarioId = (typeof SCENARIOS)[number]['id'];

/** The counter table every implementation takes from. */
export const STOCK = 'bench_stock';
export const INITIAL_QTY = 1_000_000_000;
/** What one op takes. */
export const TAKE = 1;

/** The stock row caller `caller` uses in a scenario (rows are per implementation, so each is checked on its own). */
export function rowOf(impl: ImplId, scenario: ScenarioId, caller: number): string {
  return scenario === 'hot' ? `${impl}/hot` : `${impl}/d${caller}`;
}

export interface WorkerInit {
  readonly type: 'init';
  readonly url: string;
  readonly schema: string;
  readonly pool: number;
}
export interface RunRequest {
  readonly type: 'run';
  readonly impl: ImplId;
  readonly scenario: ScenarioId;
  readonly callers: number;
  /** Run for this long … */
  readonly ms?: number;
  /** … or this many ops per caller. */
  readonly opsPerCaller?: number;
  /** Count driver-level queries (pg.Client#query calls) while running. */
  readonly countQueries?: boolean;
}
export type ToWorker = WorkerInit | RunRequest | { readonly type: 'close' };

export interface RunResult {
  readonly type: 'result';
  readonly ok: number;
  readonly failed: number;
  readonly firstError?: string;
  readonly elapsedMs: number;
  /** Latency of every op in ms, sorted (only summary statistics cross the process boundary). */
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly mean: number;
  /** CPU time of the worker process during the run (µs). */
  readonly cpuUserUs: number;
  readonly cpuSystemUs: number;
  /** Successful takes per stock row, for the correctness check. */
  readonly perRow: Record<string, number>;
  /** Driver-level queries, when counted: total and per statement shape. */
  readonly queries?: number;
  readonly byStatement?: Record<string, number>;
  /** Pool connection checkouts, when counted. */
  readonly checkouts?: number;
}
export type FromWorker = { readonly type: 'ready' } | RunResult | { readonly type: 'error'; readonly message: string };

/**
 * The sealer process (bench/pg-sealer.ts) runs `auditSealer` where a deployment runs it, beside the app (in the relay
 * process, as `usecasecore relay` does by default), so its CPU is measured on its own. `mark` starts a measurement
 * (CPU and the sealing lag), `measure` ends it.
 */
export type ToSealer =
  | { readonly type: 'init'; readonly url: string; readonly schema: string; readonly everyMs: number }
  | { readonly type: 'mark' }
  | { readonly type: 'measure' }
  | { readonly type: 'close' };
export type SealLag = { readonly maxMs: number; readonly p50Ms: number; readonly samples: number };
export type FromSealer =
  | { readonly type: 'ready' }
  | { readonly type: 'measured'; readonly cpuUs: number; readonly sealLag: SealLag }
  | { readonly type: 'error'; readonly message: string };

/** The bench's own table: one counter row per (implementation, scenario, caller). */
export async function createStock(db: Knex, rows: readonly string[]): Promise<void> {
  await db.schema.createTable(STOCK, (t) => {
    t.text('id').primary();
    t.integer('qty').notNullable();
  });
  for (let i = 0; i < rows.length; i += 500) {
    await db(STOCK).insert(rows.slice(i, i + 500).map((id) => ({ id, qty: INITIAL_QTY })));
  }
}

/** Linear-interpolated quantile of sorted values. */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return NaN;
  const at = (sorted.length - 1) * q;
  const lo = Math.floor(at),
    hi = Math.ceil(at);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (at - lo);
}

export function median(values: readonly number[]): number {
  return quantile(
    [...values].sort((a, b) => a - b),
    0.5,
  );
}

const TICK_US = 1e6 / 100; // CLK_TCK is 100 on Linux x86-64

/**
 * CPU time (µs) of every running `postgres` process (backends, walwriter, checkpointer, autovacuum…), by pid.
 * Read from /proc/<pid>/stat (world-readable); empty where /proc is not available.
 */
export function postgresCpu(): Map<number, number> {
  const out = new Map<number, number>();
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((p) => /^\d+$/.test(p));
  } catch {
    return out;
  }
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      const comm = stat.slice(stat.indexOf('(') + 1, close);
      if (comm !== 'postgres') continue;
      const fields = stat.slice(close + 2).split(' '); // fields[0] is field 3 (state); utime is field 14, stime 15
      out.set(Number(pid), (Number(fields[11]) + Number(fields[12])) * TICK_US);
    } catch {
      // the process exited between readdir and read
    }
  }
  return out;
}

/** CPU µs the postgres processes used between two `postgresCpu()` snapshots (new processes count from zero). */
export function postgresCpuDelta(before: Map<number, number>, after: Map<number, number>): number {
  let total = 0;
  for (const [pid, us] of after) total += us - (before.get(pid) ?? 0);
  return total;
}

// ---- pg, typed locally ----------------------------------------------------------------------------------------
// The project has no @types/pg (and the bench may not add dependencies), so the slice of pg used here is typed
// here. createRequire loads the same CommonJS module knex's pg dialect loads, so patching pg.Client.prototype
// (the query counter) sees knex's queries too.
export interface PgClient {
  query<R = Record<string, unknown>>(
    text: string,
    values?: readonly unknown[],
  ): Promise<{ rows: R[]; rowCount: number | null }>;
  release(): void;
}
export interface PgPool {
  connect(): Promise<PgClient>;
  end(): Promise<void>;
}
export interface PgModule {
  Pool: new (config: { connectionString: string; max: number; options?: string }) => PgPool;
  Client: { prototype: object };
}
export const pg = createRequire(import.meta.url)('pg') as PgModule;
