// A worker process of the Postgres bench: hosts the implementations of one kind (`ucc`, `knex` or `pg`) on its own
// pool and runs what the parent asks, one request at a time. Each kind gets a process of its own so that the
// pipeline's AsyncLocalStorage (on Node 20 it turns on promise hooks for the whole process, see bench/README.md)
// is charged to the pipeline only, and so each process's CPU time is that implementation's.
import { performance } from 'node:perf_hooks';
import knex, { type Knex } from 'knex';
import {
  IMPLS,
  pg,
  rowOf,
  type FromWorker,
  type ImplId,
  type RunRequest,
  type RunResult,
  type ToWorker,
  type WorkerKind,
} from './pg-common.js';
import { handKnex, handKnexPipelineSql, rawPg, usecasecore, type Op } from './pg-impls.js';

const kind = process.argv[2] as WorkerKind;
if (!IMPLS.some((i) => i.worker === kind)) throw new Error(`unknown worker kind ${kind}`);

let ops: Map<ImplId, Op> | undefined;
let close: () => Promise<void> = async () => undefined;
let middleware: readonly string[] = [];
let knexDb: Knex | undefined;
let keys = 0; // fresh idempotency keys across every run of this process

const reply = (message: FromWorker) => new Promise<void>((resolve) => process.send!(message, () => resolve()));

async function init(url: string, schema: string, size: number): Promise<void> {
  if (kind === 'pg') {
    const pool = new pg.Pool({ connectionString: url, max: size, options: `-c search_path=${schema}` });
    // Open every connection now, so the timed runs never pay for a connect.
    const clients = await Promise.all(Array.from({ length: size }, () => pool.connect()));
    clients.forEach((c) => c.release());
    ops = new Map([['pg', rawPg(pool)]]);
    close = () => pool.end();
    return;
  }
  const db: Knex = knex({
    client: 'pg',
    connection: url,
    searchPath: [schema],
    pool: { min: size, max: size },
    acquireConnectionTimeout: 30_000,
  });
  await Promise.all(Array.from({ length: size }, () => db.raw('SELECT pg_sleep(0.02)')));
  close = () => db.destroy();
  knexDb = db;
  if (kind === 'ucc') {
    const shared = usecasecore(db, { tenantPerCaller: false });
    middleware = shared.middleware;
    ops = new Map([
      ['ucc', shared.op],
      ['ucc-tenants', usecasecore(db, { tenantPerCaller: true }).op],
    ]);
  } else {
    ops = new Map([
      ['knex', handKnex(db)],
      ['knex-ucc-sql', handKnexPipelineSql(db)],
    ]);
  }
}

/** Wraps pg.Client#query (knex's pg dialect calls it once per statement, BEGIN and COMMIT included). */
function countQueries(): { stop(): { queries: number; byStatement: Record<string, number>; checkouts: number } } {
  const proto = pg.Client.prototype as unknown as { query: (...args: unknown[]) => unknown };
  const original = proto.query;
  const byStatement: Record<string, number> = {};
  let queries = 0;
  proto.query = function (this: object, ...args: unknown[]) {
    const first = args[0] as string | { text?: string };
    const text = typeof first === 'string' ? first : (first?.text ?? '?');
    queries++;
    const shape = statementShape(text);
    byStatement[shape] = (byStatement[shape] ?? 0) + 1;
    return original.apply(this, args);
  };
  // Connection checkouts: pg.Pool#connect for raw pg, the knex client's acquireConnection for knex.
  let checkouts = 0;
  const pool = (knexDb ? knexDb.client : (pg.Pool as unknown as { prototype: object }).prototype) as unknown as Record<
    string,
    (...args: unknown[]) => unknown
  >;
  const method = knexDb ? 'acquireConnection' : 'connect';
  const acquire = pool[method]!;
  pool[method] = function (this: unknown, ...args: unknown[]) {
    checkouts++;
    return acquire.apply(this, args);
  };
  return {
    stop() {
      proto.query = original;
      pool[method] = acquire;
      return { queries, byStatement, checkouts };
    },
  };
}

/** `INSERT ucc_audit`, `SELECT bench_stock`, `BEGIN`… — the verb and the first table. */
function statementShape(text: string): string {
  const sql = text.trim().replace(/\s+/g, ' ');
  const verb = (sql.split(' ')[0] ?? '').toUpperCase().replace(/;$/, '');
  if (verb === 'WITH') {
    // The unit of work's deferred writes, one data-modifying CTE each.
    const writes = [...sql.matchAll(/\b(INSERT INTO|(?<!DO )UPDATE|DELETE FROM)\s+"?([\w.]+)"?/gi)];
    return `WITH (${writes.map(([, v, table]) => `${v!.split(' ')[0]!.toUpperCase()} ${table!.split('.').pop()}`).join(' + ')})`;
  }
  const table = /\b(?:into|from|update)\s+"?([\w.]+)"?/i.exec(sql)?.[1];
  return table ? `${verb} ${table.split('.').pop()}` : verb;
}

async function run(request: RunRequest): Promise<RunResult> {
  const op = ops?.get(request.impl);
  if (!op) throw new Error(`worker ${kind} does not host ${request.impl}`);
  const latencies: number[] = [];
  const perRow: Record<string, number> = {};
  let ok = 0,
    failed = 0,
    firstError: string | undefined;
  const counter = request.countQueries ? countQueries() : undefined;
  const cpu = process.cpuUsage();
  const start = performance.now();
  const deadline = request.ms !== undefined ? start + request.ms : Infinity;
  const perCaller = request.opsPerCaller ?? Infinity;
  await Promise.all(
    Array.from({ length: request.callers }, async (_, caller) => {
      const row = rowOf(request.impl, request.scenario, caller);
      for (let n = 0; n < perCaller && performance.now() < deadline; n++) {
        const key = `${request.impl}/${caller}/${process.pid}-${++keys}`;
        const t0 = performance.now();
        try {
          if (await op(caller, row, key)) {
            ok++;
            perRow[row] = (perRow[row] ?? 0) + 1;
          } else failed++;
        } catch (error) {
          failed++;
          firstError ??= (error as Error).message;
        }
        latencies.push(performance.now() - t0);
      }
    }),
  );
  const elapsedMs = performance.now() - start;
  const used = process.cpuUsage(cpu);
  const counted = counter?.stop();
  const sorted = Float64Array.from(latencies).sort();
  const q = (p: number) => {
    const at = (sorted.length - 1) * p,
      lo = Math.floor(at),
      hi = Math.ceil(at);
    return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (at - lo);
  };
  return {
    type: 'result',
    ok,
    failed,
    ...(firstError !== undefined ? { firstError } : {}),
    elapsedMs,
    p50: q(0.5),
    p90: q(0.9),
    p99: q(0.99),
    mean: latencies.reduce((a, b) => a + b, 0) / Math.max(1, latencies.length),
    cpuUserUs: used.user,
    cpuSystemUs: used.system,
    perRow,
    ...(counted ? { queries: counted.queries, byStatement: counted.byStatement, checkouts: counted.checkouts } : {}),
  };
}

process.on('message', (message: ToWorker) => {
  void (async () => {
    try {
      if (message.type === 'init') {
        await init(message.url, message.schema, message.pool);
        if (middleware.length > 0)
          process.stderr.write(`[ucc worker] stack: ${middleware.join(' → ')} → TakeHandler\n`);
        await reply({ type: 'ready' });
      } else if (message.type === 'run') {
        await reply(await run(message));
      } else {
        await close();
        process.disconnect();
      }
    } catch (error) {
      await reply({ type: 'error', message: (error as Error).stack ?? String(error) });
    }
  })();
});
