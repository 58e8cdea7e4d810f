// Timing harness for the send benchmarks: calibrated batches of sequential awaited calls, interleaved rounds,
// per-op median / p10 / p90 over the batches.
import v8 from 'node:v8';
import vm from 'node:vm';

/** One benchmark row. `run` is one operation (awaited by the harness); `verify` checks once that it really works. */
export interface Case {
  readonly id: string;
  readonly label: string;
  readonly run: () => unknown;
  readonly verify: () => Promise<void>;
  /** Called between rounds, outside the timed region (e.g. to drop memory-adapter state that grows per send). */
  readonly reset?: () => void | Promise<void>;
  /**
   * Called before this row's verification, warm-up and each of its batches, and `leave` after them (outside the
   * timed region): process-wide setup only this row may see (e.g. a global OpenTelemetry context manager).
   */
  readonly enter?: () => void;
  readonly leave?: () => void;
  /**
   * The row keeps what it allocates (the memory adapters keep every record): after each of its batches, outside the
   * timed region, a minor GC moves the batch's survivors. Otherwise the next row's first scavenge copies them and
   * that row is charged for this one's memory (several ms per batch once the heap is hundreds of MB).
   */
  readonly settle?: boolean;
}

/** A minor GC (scavenge) on demand, without `--expose-gc` on the command line (set up on first use). */
let gcFn: ((options: { type: 'minor' | 'major' }) => void) | undefined;
function minorGc(): void {
  if (!gcFn) {
    v8.setFlagsFromString('--expose-gc');
    gcFn = vm.runInNewContext('gc') as typeof gcFn;
  }
  gcFn!({ type: 'minor' });
}

/** Per-op nanoseconds of every batch taken for one case (index = round, so rows can be paired per round). */
export interface Samples {
  readonly id: string;
  readonly label: string;
  readonly batch: number;
  /** Wall-clock time per op. */
  readonly perOpNs: number[];
  /**
   * CPU time of the process (user + system, all threads) per op over the same batch: unlike wall-clock time it does
   * not count the time other processes of a shared machine hold the CPU.
   */
  readonly perOpCpuNs: number[];
}

export interface Stats {
  readonly median: number;
  readonly p10: number;
  readonly p90: number;
  readonly n: number;
}

const now = (): bigint => process.hrtime.bigint();

/** Runs `n` sequential awaited calls; returns elapsed ns. */
async function timeBatch(run: () => unknown, n: number): Promise<number> {
  const start = now();
  for (let i = 0; i < n; i++) await run();
  return Number(now() - start);
}

/** `timeBatch`, also returning the process's CPU time (ns) over the batch. */
async function timeBatchWithCpu(run: () => unknown, n: number): Promise<{ wall: number; cpu: number }> {
  const cpu = process.cpuUsage();
  const wall = await timeBatch(run, n);
  const used = process.cpuUsage(cpu);
  return { wall, cpu: (used.user + used.system) * 1000 };
}

/** Warms a case up for at least `warmMs`, then picks the batch size that takes about `batchMs` (at its fastest). */
export async function calibrate(c: Case, warmMs: number, batchMs: number): Promise<number> {
  return within(c, () => calibrateInside(c, warmMs, batchMs));
}

/** Runs `fn` between the case's `enter` and `leave`. */
export async function within<T>(c: Case, fn: () => Promise<T>): Promise<T> {
  c.enter?.();
  try {
    return await fn();
  } finally {
    c.leave?.();
  }
}

async function calibrateInside(c: Case, warmMs: number, batchMs: number): Promise<number> {
  let n = 64;
  const warmUntil = Date.now() + warmMs;
  // The fastest batch sets the size: on a shared machine the last one may have waited for the CPU (a batch sized
  // from it would be far shorter than `batchMs`, and its samples noisier).
  let perOp = Infinity;
  while (Date.now() < warmUntil) {
    const ns = await timeBatch(c.run, n);
    perOp = Math.min(perOp, ns / n);
    if (ns < 2_000_000 && n < 1 << 20) n *= 2;
  }
  return Math.max(16, Math.round((batchMs * 1e6) / perOp));
}

/** Takes one batch sample of every case, `rounds` times, interleaved so drift and GC hit every case alike. */
export async function sample(
  cases: readonly Case[],
  batches: ReadonlyMap<string, number>,
  rounds: number,
): Promise<Samples[]> {
  const out = cases.map((c) => ({
    id: c.id,
    label: c.label,
    batch: batches.get(c.id)!,
    perOpNs: [] as number[],
    perOpCpuNs: [] as number[],
  }));
  for (let r = 0; r < rounds; r++) {
    for (const [i, c] of cases.entries()) {
      await c.reset?.();
      const s = out[i]!;
      const { wall, cpu } = await within(c, () => timeBatchWithCpu(c.run, s.batch));
      s.perOpNs.push(wall / s.batch);
      s.perOpCpuNs.push(cpu / s.batch);
      if (c.settle) minorGc();
    }
  }
  return out;
}

function quantile(sorted: readonly number[], q: number): number {
  const at = (sorted.length - 1) * q;
  const lo = Math.floor(at),
    hi = Math.ceil(at);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (at - lo);
}

export function stats(values: readonly number[]): Stats {
  const sorted = [...values].sort((a, b) => a - b);
  return { median: quantile(sorted, 0.5), p10: quantile(sorted, 0.1), p90: quantile(sorted, 0.9), n: sorted.length };
}

/** Formats ns as ns below 10 µs' worth of precision, else µs. */
export function fmt(ns: number): string {
  if (ns < 1_000) return `${ns.toFixed(0)} ns`;
  if (ns < 100_000) return `${(ns / 1_000).toFixed(2)} µs`;
  return `${(ns / 1_000).toFixed(0)} µs`;
}

export function ratio(a: number, b: number): string {
  return `${(a / b).toFixed(2)}×`;
}

/** Throws with `message` unless `condition` holds (benchmarks verify before they are timed). */
export function check(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(`bench setup broken: ${message}`);
}

/**
 * A number from the environment (a bench's knob), or `fallback` when unset or empty.
 * @example const RATE = envNumber('BENCH_PROCESS_RATE', 50);
 */
export function envNumber(name: string, fallback: number): number {
  const raw = process.env[name];
  return raw === undefined || raw === '' ? fallback : Number(raw);
}

/** Postgres and RabbitMQ as the benches find them: DATABASE_URL and AMQP_URL, else the machine's usual addresses. */
export const BENCH_DB_URL = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test';
export const BENCH_AMQP_URL = process.env.AMQP_URL || 'amqp://guest:guest@127.0.0.1:5672';
