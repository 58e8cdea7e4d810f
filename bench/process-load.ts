// Load drivers and counters of the process bench (bench/process.bench.ts): an open loop at a fixed rate, a closed loop
// with a fixed number in flight, a bounded wait, and a count of the statements sent to Postgres.
import { pg } from './pg-common.js';
import { sleep } from './amqp-common.js';

/**
 * Calls `fire(i)` for i in [0, count) at `perSecond`, on schedule whatever the earlier calls are doing (open loop: a
 * slow system gets a backlog, not fewer arrivals); resolves when every call resolved.
 */
export async function openLoop(perSecond: number, count: number, fire: (i: number) => Promise<void>): Promise<void> {
  const interval = 1_000 / perSecond;
  const calls: Array<Promise<void>> = [];
  const t0 = performance.now();
  for (let i = 0; i < count;) {
    const due = Math.min(count, Math.floor((performance.now() - t0) / interval) + 1);
    for (; i < due; i++) calls.push(fire(i));
    if (i < count) await sleep(Math.max(1, t0 + i * interval - performance.now()));
  }
  await Promise.all(calls);
}

/** Runs `run(i)` for i in [0, count), `inFlight` at a time, each next one as soon as one resolved (closed loop). */
export async function closedLoop(inFlight: number, count: number, run: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(inFlight, count) }, async () => {
      while (next < count) await run(next++);
    }),
  );
}

/** `promise`, or an error saying what did not happen within `ms` (the bench stops rather than hang). */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`bench stuck: ${what} not done within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** A table name as written (`"schema"."ucc_jobs"`, `schema.ucc_jobs`, `ucc_jobs`): its last part. */
const TABLE = String.raw`((?:"?\w+"?\.)?"?\w+"?)`;
const bare = (table: string) => table.split('.').pop()!.replace(/"/g, '');

/** The shape of a statement: its verb and table (`UPDATE ucc_processes`), or the tables of a WITH's writes. */
function shapeOf(text: string): string {
  const sql = text.trim().replace(/\s+/g, ' ');
  const verb = (sql.split(' ')[0] ?? '').toUpperCase().replace(/;$/, '');
  if (verb === 'WITH') {
    // The unit of work's deferred writes: one data-modifying CTE each.
    const writes = [
      ...sql.matchAll(new RegExp(String.raw`\b(INSERT INTO|(?<!DO )UPDATE|DELETE FROM)\s+${TABLE}`, 'gi')),
    ];
    return `WITH (${writes.map(([, w, table]) => `${w!.split(' ')[0]!.toUpperCase()} ${bare(table!)}`).join(' + ')})`;
  }
  if (/pg_advisory_xact_lock/.test(sql)) return 'SELECT advisory lock (relay claim)';
  const table = new RegExp(String.raw`\b(?:into|from|update)\s+${TABLE}`, 'i').exec(sql)?.[1];
  const lock = / for update/i.test(sql) ? ' FOR UPDATE' : '';
  return table ? `${verb} ${bare(table)}${lock}` : verb;
}

export interface StatementCount {
  readonly total: number;
  readonly byShape: Readonly<Record<string, number>>;
}

/**
 * Counts the statements every pg connection of this process sends (node-postgres' `Client#query`, which knex's pg
 * dialect and the library's prepared statements both call once per statement, BEGIN and COMMIT included) until
 * `stop()`. `byShape` only when asked: classifying costs CPU.
 */
export function countStatements(byShape = false): { stop(): StatementCount } {
  const proto = pg.Client.prototype as unknown as { query: (...args: unknown[]) => unknown };
  const original = proto.query;
  const shapes: Record<string, number> = {};
  let total = 0;
  proto.query = function (this: object, ...args: unknown[]) {
    total++;
    if (byShape) {
      const first = args[0] as string | { text?: string };
      const shape = shapeOf(typeof first === 'string' ? first : (first?.text ?? '?'));
      shapes[shape] = (shapes[shape] ?? 0) + 1;
    }
    return original.apply(this, args);
  };
  return {
    stop: () => {
      proto.query = original;
      return { total, byShape: shapes };
    },
  };
}
