// Timing harness for the send benchmarks: calibrated batches of sequential awaited calls, interleaved rounds,
// per-op median / p10 / p90 over the batches.

/** One benchmark row. `run` is one operation (awaited by the harness); `verify` checks once that it really works. */
export interface Case {
  readonly id: string;
  readonly label: string;
  readonly run: () => unknown;
  readonly verify: () => Promise<void>;
  /** Called between rounds, outside the timed region (e.g. to drop memory-adapter state that grows per send). */
  readonly reset?: () => void | Promise<void>;
}

/** Per-op nanoseconds of every batch taken for one case. */
export interface Samples {
  readonly id: string;
  readonly label: string;
  readonly batch: number;
  readonly perOpNs: number[];
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

/** Warms a case up for at least `warmMs`, then picks the batch size that takes about `batchMs`. */
export async function calibrate(c: Case, warmMs: number, batchMs: number): Promise<number> {
  let n = 64;
  const warmUntil = Date.now() + warmMs;
  let lastNs = 0;
  while (Date.now() < warmUntil) {
    lastNs = await timeBatch(c.run, n);
    if (lastNs < 2_000_000 && n < 1 << 20) n *= 2;
  }
  const perOp = lastNs / n;
  return Math.max(16, Math.round((batchMs * 1e6) / perOp));
}

/** Takes one batch sample of every case, `rounds` times, interleaved so drift and GC hit every case alike. */
export async function sample(
  cases: readonly Case[],
  batches: ReadonlyMap<string, number>,
  rounds: number,
): Promise<Samples[]> {
  const out = cases.map((c) => ({ id: c.id, label: c.label, batch: batches.get(c.id)!, perOpNs: [] as number[] }));
  for (let r = 0; r < rounds; r++) {
    for (const [i, c] of cases.entries()) {
      await c.reset?.();
      const s = out[i]!;
      s.perOpNs.push((await timeBatch(c.run, s.batch)) / s.batch);
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
