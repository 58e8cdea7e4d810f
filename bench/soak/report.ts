// The soak's report: per-minute rows and fault windows from the raw attempts, as Markdown tables.
import { CUT, TIMED_OUT, type Attempts } from './load.js';
import { SETTLE_MS, type FaultWindow } from './faults.js';

/** What the soak sampled at the end of each minute. */
export interface MinuteSample {
  /** 1, 2, …; the sample after the run (the load stopped, the backlog drained) has `after: true`. */
  readonly minute: number;
  readonly after?: boolean;
  readonly rssMb: ReadonlyArray<number | undefined>;
  readonly heapMb: ReadonlyArray<number | undefined>;
  readonly afterGc: boolean;
  readonly resources: ReadonlyArray<number | undefined>;
  readonly pgConnections: number;
  readonly unsent: number;
  /** The largest backlog seen during the minute (sampled every 5 s). */
  readonly unsentMax: number;
  readonly parked: number;
  readonly rows: Readonly<Record<string, number>>;
  readonly tapped: number;
}

/** Which fault window, if any, a span of time overlaps. */
export type WindowOver = (start: number, end: number) => FaultWindow | undefined;

/** The value at quantile `q` (0–1) of `values` (sorted in place), or NaN when empty. */
export function quantile(values: number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  values.sort((a, b) => a - b);
  return values[Math.min(values.length - 1, Math.floor(q * values.length))]!;
}

/** An attempt is an error when no answer came (cut, timed out) or the answer was a 5xx. */
export function isError(status: number): boolean {
  return status < 0 || status >= 500;
}

/** A Markdown table. */
export function table(header: readonly string[], rows: ReadonlyArray<ReadonlyArray<string | number>>): string {
  const line = (cells: ReadonlyArray<string | number>) => `| ${cells.map(String).join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

export const fmt = (n: number, digits = 0) => (Number.isFinite(n) ? n.toFixed(digits) : '—');

/** Counts of attempts by class: 2xx, 409/422 (business outcomes), other 4xx, 5xx, cut, timed out. */
export function classify(statuses: readonly number[]) {
  const c = { ok: 0, business: 0, other4xx: 0, s5xx: 0, cut: 0, timeout: 0 };
  for (const s of statuses) {
    if (s === CUT) c.cut++;
    else if (s === TIMED_OUT) c.timeout++;
    else if (s >= 500) c.s5xx++;
    else if (s === 409 || s === 422) c.business++;
    else if (s >= 400) c.other4xx++;
    else c.ok++;
  }
  return c;
}

/** The attempts started in [from, to): their statuses and the latencies of the answered ones. */
function slice(attempts: Attempts, from: number, to: number, keep: (i: number) => boolean = () => true) {
  const statuses: number[] = [],
    latencies: number[] = [],
    indexes: number[] = [];
  for (let i = 0; i < attempts.at.length; i++) {
    const at = attempts.at[i]!;
    if (at < from || at >= to || !keep(i)) continue;
    statuses.push(attempts.status[i]!);
    indexes.push(i);
    if (attempts.status[i]! > 0) latencies.push(attempts.ms[i]!);
  }
  return { statuses, latencies, indexes };
}

const pair = (values: ReadonlyArray<number | undefined>, digits = 0) =>
  values.map((v) => (v === undefined ? 'down' : fmt(v, digits))).join(' / ');

/** The per-minute table: load, latency, errors in and out of fault windows, memory, backlog, table sizes. */
export function minuteTable(
  t0: number,
  attempts: Attempts,
  samples: readonly MinuteSample[],
  windowOver: WindowOver,
  tables: readonly string[],
): string {
  const rows = samples.map((sample) => {
    const from = t0 + (sample.minute - 1) * 60_000;
    const to = sample.after ? Number.POSITIVE_INFINITY : from + 60_000;
    const { statuses, latencies, indexes } = slice(attempts, from, to);
    let inFault = 0,
      outside = 0;
    const faults = new Set<string>();
    for (const i of indexes) {
      const at = attempts.at[i]!;
      const window = windowOver(at, at + attempts.ms[i]!);
      if (window) faults.add(window.name);
      if (isError(attempts.status[i]!)) {
        if (window) inFault++;
        else outside++;
      }
    }
    const c = classify(statuses);
    return [
      sample.after ? 'after' : sample.minute,
      statuses.length,
      fmt(c.ok / 60, 1),
      fmt(quantile([...latencies], 0.5), 1),
      fmt(quantile(latencies, 0.99), 1),
      c.ok,
      c.business,
      c.other4xx,
      c.s5xx,
      c.cut,
      c.timeout,
      inFault,
      outside,
      pair(sample.rssMb, 1),
      pair(sample.heapMb, 1),
      pair(sample.resources),
      sample.pgConnections,
      `${sample.unsentMax} / ${sample.unsent}`,
      ...tables.map((t) => sample.rows[t] ?? '—'),
      [...faults].join(', ') || '—',
    ];
  });
  return table(
    [
      'min',
      'attempts',
      '2xx/s',
      'p50 ms',
      'p99 ms',
      '2xx',
      '409/422',
      'other 4xx',
      '5xx',
      'cut',
      'timeout',
      'errors in faults',
      'errors outside',
      'RSS MB after GC (p1 / p2)',
      'heap MB after GC',
      'handles',
      'pg conns',
      'outbox unsent (max / end)',
      ...tables,
      'fault windows',
    ],
    rows,
  );
}

/** The fault table: when, how long, what, and the attempts overlapping each window (its settle time included). */
export function faultTable(
  t0: number,
  attempts: Attempts,
  windows: readonly FaultWindow[],
  duplicatesAt: readonly number[],
): string {
  const clock = (at: number) => {
    const s = Math.round((at - t0) / 1000);
    const abs = Math.abs(s);
    return `${s < 0 ? '-' : ''}${Math.floor(abs / 60)}:${String(abs % 60).padStart(2, '0')}`;
  };
  return table(
    ['fault', 'at (m:ss)', 'lasted s', 'what', 'attempts', 'p99 ms', '2xx', '5xx', 'cut', 'timeout', 'relay dups'],
    windows.map((w) => {
      const { statuses, latencies } = slice(
        attempts,
        0,
        Number.POSITIVE_INFINITY,
        (i) => attempts.at[i]! + attempts.ms[i]! >= w.start && attempts.at[i]! <= w.end + SETTLE_MS,
      );
      const c = classify(statuses);
      const dups = duplicatesAt.filter((at) => at >= w.start && at <= w.end + SETTLE_MS).length;
      return [
        w.name,
        clock(w.start),
        fmt((w.end - w.start) / 1000, 1),
        w.detail,
        statuses.length,
        fmt(quantile(latencies, 0.99), 1),
        c.ok,
        c.s5xx,
        c.cut,
        c.timeout,
        dups,
      ];
    }),
  );
}

/** The failed attempts (the first 2,000 are kept), grouped by fault window (or none) and by what they said. */
export function errorTable(t0: number, attempts: Attempts, windowOver: WindowOver): string {
  const groups = new Map<string, { window: string; what: string; count: number; first: number }>();
  for (const e of attempts.errors) {
    const window = windowOver(e.at, e.end)?.name ?? '**outside every window**';
    const what = `${e.status === CUT ? 'cut' : e.status === TIMED_OUT ? 'timeout' : e.status} ${e.what}`;
    const key = `${window}\u0000${what}`;
    const group = groups.get(key) ?? { window, what, count: 0, first: e.at };
    group.count++;
    groups.set(key, group);
  }
  if (groups.size === 0) return 'No failed attempt.';
  return table(
    ['first at (s)', 'window', 'count', 'status and what it said'],
    [...groups.values()]
      .sort((a, b) => a.first - b.first)
      .slice(0, 30)
      .map((g) => [
        fmt((g.first - t0) / 1000, 1),
        g.window,
        g.count,
        g.what.replace(/\s+/g, ' ').replaceAll('|', '\\|'),
      ]),
  );
}
