// `npm run soak`: two sample services (samples/server.ts) on one Postgres and one RabbitMQ under mixed HTTP load
// for SOAK_MINUTES (default 20) at SOAK_RATE requests/s (default 150), through a broker restart, killed Postgres
// connections, a SIGKILLed and restarted service and a broker memory alarm. Prints a Markdown report (per minute:
// memory after GC, latency, errors by status in and out of fault windows, outbox backlog, table sizes; at the end:
// events lost and duplicated, stock conservation, the consumer's projection, the audit chain) to stdout and to
// bench/soak/results/. Progress goes to stderr. See bench/soak/README.md.
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { connect } from 'amqplib';
import knex from 'knex';
import { Faults, readWatermark } from './faults.js';
import { Load } from './load.js';
import { errorTable, faultTable, minuteTable, table, type MinuteSample } from './report.js';
import { SampleService } from './services.js';
import { Tap } from './tap.js';

const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
const env = process.env;
const MINUTES = Number(env.SOAK_MINUTES ?? 20);
const RATE = Number(env.SOAK_RATE ?? 150);
if (!(MINUTES > 0) || !(RATE > 0)) {
  console.error(`SOAK_MINUTES and SOAK_RATE must be numbers > 0, got "${env.SOAK_MINUTES}" and "${env.SOAK_RATE}"`);
  process.exit(2);
}
const DATABASE_URL = env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const AMQP_URL = env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const KEEP = env.SOAK_KEEP === '1';
/** Retention short enough for the library's tables to reach their steady size within a few minutes of load. */
const RETENTION = {
  RETENTION_OUTBOX_SENT_MS: '60000',
  RETENTION_INBOX_MS: '120000',
  RETENTION_JOBS_MS: '120000',
  RETENTION_PROCESSES_MS: '120000',
  IDEMPOTENCY_TTL_MS: '120000',
  RETENTION_EVERY_MS: '15000',
};
const PRODUCTS = Array.from({ length: 20 }, (_, i) => `soak-sku-${i}`);
const BINS = ['A', 'B', 'C', 'D'];
const STOCK_PER_BIN = 5_000;
const TABLES = ['ucc_outbox', 'ucc_inbox', 'ucc_idempotency', 'ucc_audit', 'ucc_audit_heads'];
/** What keeps each table's size bounded (or why it grows), for the growth table. */
const WHY_SIZE: Record<string, string> = {
  ucc_outbox: 'sent rows purged 60 s after sending (retention every 15 s): flat once warm',
  ucc_inbox: 'records purged after 120 s: flat once warm',
  ucc_idempotency: 'records expire after 120 s (IDEMPOTENCY_TTL_MS) and are reaped every 15 s: flat once warm',
  ucc_audit: 'grows by design: the audit log is append-only and never purged (one row per validated send)',
  ucc_audit_heads: 'one row per tenant',
};
/**
 * Minutes after which the longest retention window (120 s) has passed: from then on each table hovers at its plateau
 * (up to one purge interval, 15 s, of rows above it).
 */
const WARM_UP_MINUTES = 2;

const id = randomUUID().slice(0, 8);
const schema = `soak_${id}`;
const prefix = `ucc-soak-${id}`;
const appName = `ucc-soak-${id}`;
const tapQueue = `${prefix}.soak-tap`;
const salesQueue = `${prefix}.sample.sales`;
const exchanges = { events: `${prefix}.events`, jobs: `${prefix}.jobs`, dead: `${prefix}.dead` };
const progress = (line: string) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);

const admin = knex({ client: 'pg', connection: DATABASE_URL, pool: { min: 0, max: 4 } });
const faults = new Faults(progress);
const serviceEnv = (name: string) => ({
  DATABASE_URL,
  AMQP_URL,
  UCC_SCHEMA: schema,
  AMQP_PREFIX: prefix,
  PGAPPNAME: `${appName}-${name}`,
  ...RETENTION,
});
const services = ['p1', 'p2'].map((name) => new SampleService(name, serviceEnv(name), progress));
const [p1, p2] = services as [SampleService, SampleService];

// Whatever happens, the broker is put back and no service is left running.
process.on('exit', () => {
  for (const done of faults.restoreSync()) console.error(`soak: ${done}`);
  for (const service of services) service.killNow();
});
for (const signal of ['SIGINT', 'SIGTERM'] as const)
  process.once(signal, () => {
    console.error(`soak: ${signal}: putting the broker back, stopping the services (schema ${schema} is left)`);
    process.exit(130);
  });
process.on('uncaughtException', (error) => {
  console.error('soak: crashed:', error);
  process.exit(1);
});

const q = async (sql: string, bindings: readonly unknown[] = []) =>
  (await admin.raw(sql.replaceAll('$s', `"${schema}"`), bindings as never)).rows as Array<Record<string, any>>;

await preflight();
progress(`soak ${id}: ${MINUTES} min at ${RATE} req/s; schema ${schema}, broker prefix ${prefix}`);
const tap = new Tap(AMQP_URL, tapQueue, exchanges.events, progress);
// The broker is shared: a restart the soak did not cause (another run's) gets a window of its own, so its errors
// are not counted as errors outside faults.
let outage: { end(): void } | undefined;
tap.onLost = () => {
  const ours = faults.windowOver(Date.now());
  if (ours?.name !== 'broker restart') outage = faults.open("broker outage (not the soak's)", 'seen by the tap');
};
tap.onBack = () => {
  outage?.end();
  outage = undefined;
};
await tap.start(); // bound before any event is published
await p1.start(); // migrates the schema first
await p2.start();
await seed();

const load = new Load({
  rate: RATE,
  targets: () => services.flatMap((s) => s.url ?? []),
  products: PRODUCTS,
  bins: BINS,
});
const t0 = Date.now();
const end = t0 + MINUTES * 60_000;
load.start();
const samples: MinuteSample[] = [];
// The outbox backlog every 5 s, so a minute's row shows its peak and not only its end.
let unsentMax = 0;
const backlog = setInterval(() => {
  void unsentNow().then(
    (n) => {
      unsentMax = Math.max(unsentMax, n);
      if (n >= 1_000) progress(`outbox backlog ${n}`);
    },
    () => undefined, // the database may be the fault of the moment
  );
}, 5_000);
let faultFailure: unknown;
const faultsDone = runFaults().catch((error: unknown) => {
  faultFailure = error; // reported; the run goes on without the remaining faults
  progress(`fault failed: ${String(error)}`);
});
for (let minute = 1; minute <= Math.ceil(MINUTES); minute++) {
  await until(Math.min(t0 + minute * 60_000, end));
  if (Date.now() >= end) load.halt(); // the last row measures the run, not the sampling after it
  samples.push(await sample(minute));
  const last = samples.at(-1)!;
  progress(
    `minute ${minute}: ${load.issued} issued, ${load.inFlight} in flight, RSS ${last.rssMb.join('/')} MB, ` +
      `unsent ${last.unsent}, tapped ${last.tapped}`,
  );
}
await faultsDone;
clearInterval(backlog);
progress('load stopped; waiting for retries under way');
await load.stop();
const settled = await settle();
const finalSample = { ...(await sample(MINUTES + 1)), after: true }; // its attempts: those after `end`
const exits = await Promise.all(
  services.map(async (s) => {
    const sent = Date.now();
    const exit = await s.kill('SIGTERM');
    return { name: s.name, code: exit?.code, signal: exit?.signal, ms: (exit?.at ?? sent) - sent };
  }),
);
await tap.stop();
const report = await buildReport();
console.log(report);
const file = `${REPO_ROOT}bench/soak/results/soak-${new Date(t0).toISOString().replace(/[:.]/g, '-')}.md`;
mkdirSync(`${REPO_ROOT}bench/soak/results`, { recursive: true });
writeFileSync(file, `${report}\n`);
progress(`report written to ${file}`);
await cleanup();
process.exit(0);

/** Refuses to start on a broker already in a memory alarm or a database it cannot reach. */
async function preflight(): Promise<void> {
  await admin.raw('select 1');
  const model = await connect(AMQP_URL);
  await model.close();
  const watermark = await readWatermark();
  if (watermark[0] !== 'absolute' && Number(watermark[0]) < 0.05) {
    throw new Error(
      `the broker's memory watermark is ${watermark[0]} (an alarm someone left on?): restore it first, e.g. ` +
        '`rabbitmqctl set_vm_memory_high_watermark 0.4`',
    );
  }
  progress(
    `broker watermark ${watermark.join(' ')}: if this run is killed hard, restore it with ` +
      `\`rabbitmqctl set_vm_memory_high_watermark ${watermark.join(' ')}\` and \`rabbitmqctl start_app\``,
  );
}

async function seed(): Promise<void> {
  for (const productId of PRODUCTS)
    for (const binId of BINS) {
      const response = await fetch(`${p1.url}/inventory/receipts`, {
        method: 'POST',
        headers: { 'X-Actor': 'manager', 'X-Roles': 'manager', 'Content-Type': 'application/json' },
        body: JSON.stringify({ productId, binId, qty: STOCK_PER_BIN }),
      });
      if (response.status !== 200) throw new Error(`seeding ${productId}/${binId}: ${response.status}`);
    }
}

function until(at: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, at - Date.now())));
}

/** The faults, spread over the run (at 15, 35, 55 and 75 % of it), one after another. */
async function runFaults(): Promise<void> {
  const at = (fraction: number) => until(t0 + fraction * MINUTES * 60_000);
  await at(0.15);
  await faults.brokerRestart(5_000);
  await at(0.35);
  await faults.pgKill(admin, appName);
  await at(0.55);
  await faults.processKill(p2, 3_000);
  await at(0.75);
  await faults.memoryAlarm(15_000);
}

async function unsentNow(): Promise<number> {
  const [row] = await q(`SELECT count(*) AS n FROM $s.ucc_outbox WHERE sent_at IS NULL AND parked_at IS NULL`);
  return Number(row!.n);
}

async function sample(minute: number): Promise<MinuteSample> {
  const stats = await Promise.all(services.map((s) => s.stats()));
  const [counts] = await q(
    `SELECT ${TABLES.map((t) => `(SELECT count(*) FROM $s.${t}) AS ${t}`).join(', ')},
            (SELECT count(*) FROM $s.ucc_outbox WHERE sent_at IS NULL AND parked_at IS NULL) AS unsent,
            (SELECT count(*) FROM $s.ucc_outbox WHERE parked_at IS NOT NULL) AS parked,
            (SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE ?) AS pg`,
    [`${appName}%`],
  );
  const peak = Math.max(unsentMax, Number(counts!.unsent));
  unsentMax = 0; // the next minute's peak starts now
  return {
    minute,
    rssMb: stats.map((s) => (s ? s.rss / 2 ** 20 : undefined)),
    heapMb: stats.map((s) => (s ? s.heapUsed / 2 ** 20 : undefined)),
    afterGc: stats.every((s) => s?.afterGc !== false),
    resources: stats.map((s) => s?.resources),
    pgConnections: Number(counts!.pg),
    unsent: Number(counts!.unsent),
    unsentMax: peak,
    parked: Number(counts!.parked),
    rows: Object.fromEntries(TABLES.map((t) => [t, Number(counts![t])])),
    tapped: tap.ids.size,
  };
}

/** Waits (≤ 2 min) until the outbox is empty, the consumer's queue too, and the tap got nothing for 2 s. */
async function settle(): Promise<{ ok: boolean; ms: number }> {
  const started = Date.now();
  while (Date.now() - started < 120_000) {
    if ((await unsentNow()) === 0 && Date.now() - tap.lastDeliveryAt > 2_000 && (await salesQueued()) === 0)
      return { ok: true, ms: Date.now() - started };
    await new Promise((resolve) => setTimeout(resolve, 500)); // polled: the backlog lives in Postgres and RabbitMQ
  }
  return { ok: false, ms: Date.now() - started };
}

/** Messages waiting in the consumer's queue and its retry queue (Infinity while the broker cannot say). */
async function salesQueued(): Promise<number> {
  try {
    const model = await connect(AMQP_URL);
    try {
      const channel = await model.createChannel();
      const main = await channel.checkQueue(salesQueue);
      return main.messageCount + (await channel.checkQueue(`${salesQueue}.retry`)).messageCount;
    } finally {
      await model.close().catch(() => undefined);
    }
  } catch {
    return Number.POSITIVE_INFINITY; // the broker is restarting (ours or someone else's): ask again
  }
}

/** The end-of-run checks, each with what it compared. */
async function checks(): Promise<Array<[check: string, result: string, ok: boolean | undefined]>> {
  const out: Array<[string, string, boolean | undefined]> = [];
  // Events: what committed (the audit log keeps every command's success; orders keep their rows) against the tap.
  const committed = await q(
    `SELECT type, coalesce(payload->>'reason', payload->>'orderId',
                           (payload->>'productId') || '/' || (payload->>'binId')) AS key
       FROM $s.ucc_audit
      WHERE outcome = 'ok' AND replayed IS NOT TRUE
        AND type IN ('ReceiveStock', 'MoveInventory', 'PayOrder', 'ShipOrder', 'CancelOrder')`,
  );
  const eventOf: Record<string, string> = {
    ReceiveStock: 'stock.received',
    MoveInventory: 'inventory.moved',
    PayOrder: 'order.paid',
    ShipOrder: 'order.shipped',
    CancelOrder: 'order.cancelled',
  };
  const expected = new Map<string, Set<string>>();
  for (const { type, key } of committed) {
    const event = eventOf[type as string]!;
    expected.set(event, (expected.get(event) ?? new Set()).add(key as string));
  }
  const orders = await q(`SELECT order_id, status, product_id, bin_id, qty FROM $s.sample_orders`);
  expected.set('order.placed', new Set(orders.map((o) => o.order_id as string)));
  let lost = 0,
    phantom = 0,
    doubled = 0;
  const perType: string[] = [];
  for (const [type, keys] of [...expected].sort(([a], [b]) => a.localeCompare(b))) {
    const seen = tap.keys.get(type) ?? new Map<string, Set<string>>();
    const missing = [...keys].filter((k) => !seen.has(k)).length;
    const extra = [...seen.keys()].filter((k) => !keys.has(k)).length;
    const twice = [...seen.values()].filter((ids) => ids.size > 1).length;
    lost += missing;
    phantom += extra;
    doubled += twice;
    perType.push(`${type} ${keys.size}${missing ? ` (${missing} lost)` : ''}${twice ? ` (${twice} twice)` : ''}`);
  }
  out.push(['events committed, per type', perType.join('; '), undefined]);
  out.push(['events lost (committed, never reached the bound queue)', String(lost), lost === 0]);
  out.push([
    'events duplicated: same messageId published again (relay at-least-once)',
    `${tap.relayDuplicates} (and ${tap.redeliveries} broker redeliveries to the tap, not counted)`,
    undefined,
  ]);
  out.push(['effects done twice: one business key under two messageIds', String(doubled), doubled === 0]);
  out.push(['events for nothing committed', String(phantom), phantom === 0]);
  // The outbox rows retention has not purged yet (sent in the last minute, and anything unsent): each at the tap.
  const kept = await q(`SELECT id FROM $s.ucc_outbox`);
  const missing = kept.filter((r) => !tap.ids.has(r.id as string)).length;
  out.push([
    'outbox rows still kept (retention purges sent rows after 60 s), each at the bound queue',
    `${kept.length - missing} of ${kept.length}`,
    missing === 0,
  ]);
  const [outbox] = await q(
    `SELECT count(*) FILTER (WHERE sent_at IS NULL AND parked_at IS NULL) AS unsent,
            count(*) FILTER (WHERE parked_at IS NOT NULL) AS parked FROM $s.ucc_outbox`,
  );
  out.push([
    'outbox after the drain',
    `${outbox!.unsent} unsent, ${outbox!.parked} parked (settled: ${settled.ok ? `yes, in ${settled.ms} ms` : 'NO'})`,
    Number(outbox!.unsent) === 0 && Number(outbox!.parked) === 0,
  ]);

  // Stock: what the bins hold plus what was shipped equals what was received, per product.
  const stock = await q(`SELECT product_id, bin_id, qty FROM $s.sample_stock`);
  const held = new Map<string, number>();
  for (const s of stock) held.set(s.product_id, (held.get(s.product_id) ?? 0) + Number(s.qty));
  const shipped = new Map<string, number>();
  for (const o of orders.filter((o) => o.status === 'shipped'))
    shipped.set(o.product_id, (shipped.get(o.product_id) ?? 0) + Number(o.qty));
  const off = PRODUCTS.filter((p) => (held.get(p) ?? 0) + (shipped.get(p) ?? 0) !== BINS.length * STOCK_PER_BIN);
  out.push([
    'stock conserved: bins + shipped = received, per product',
    off.length === 0 ? `all ${PRODUCTS.length} products` : `off for ${off.join(', ')}`,
    off.length === 0,
  ]);
  const unknown = ['move', 'ship'].reduce((n, kind) => n + (load.ledger.outcomes[kind]?.unknown ?? 0), 0);
  if (unknown === 0) {
    const wrong = stock.filter(
      (s) => Number(s.qty) !== STOCK_PER_BIN + (load.ledger.stockDelta.get(s.product_id)?.get(s.bin_id) ?? 0),
    );
    out.push([
      "each bin = its receipt + the client's successful moves and shipments",
      wrong.length === 0 ? `all ${stock.length} bins` : `${wrong.length} bins differ`,
      wrong.length === 0,
    ]);
  } else out.push(["each bin = the client's ledger", `not checkable: ${unknown} moves/shipments unknown`, undefined]);

  // The consumer's projection: every paid order counted once.
  const paid = new Map<string, { orders: number; qty: number }>();
  for (const o of orders.filter((o) => o.status === 'paid' || o.status === 'shipped')) {
    const p = paid.get(o.product_id) ?? { orders: 0, qty: 0 };
    paid.set(o.product_id, { orders: p.orders + 1, qty: p.qty + Number(o.qty) });
  }
  const sales = await q(`SELECT product_id, paid_orders, paid_qty FROM $s.sample_sales`);
  const salesOff = PRODUCTS.filter((p) => {
    const row = sales.find((s) => s.product_id === p);
    const want = paid.get(p) ?? { orders: 0, qty: 0 };
    return Number(row?.paid_orders ?? 0) !== want.orders || Number(row?.paid_qty ?? 0) !== want.qty;
  });
  out.push([
    'sales projection = paid orders (each order.paid consumed once)',
    salesOff.length === 0
      ? `${[...paid.values()].reduce((n, p) => n + p.orders, 0)} paid orders`
      : `off for ${salesOff}`,
    salesOff.length === 0,
  ]);

  // The audit chain, through the CLI operators use.
  const verify = await promisify(execFile)(
    process.execPath,
    ['--import', 'tsx', 'adapters/cli/main.ts', 'audit', 'verify', '--json'],
    { cwd: REPO_ROOT, env: { ...process.env, DATABASE_URL, UCC_SCHEMA: schema } },
  ).then(
    ({ stdout }) => JSON.parse(stdout) as { ok: boolean; records: number; pending: number; problems: unknown[] },
    (error: { stdout?: string }) => JSON.parse(error.stdout ?? '{"ok":false}') as { ok: boolean; problems?: unknown },
  );
  out.push(['`usecasecore audit verify`', JSON.stringify(verify).slice(0, 300), verify.ok]);

  for (const e of exits)
    out.push([
      `${e.name}: SIGTERM at the end → exit`,
      `code ${e.code ?? e.signal} in ${e.ms} ms`,
      e.code === 0 && e.ms <= 10_000,
    ]);
  if (faultFailure !== undefined) out.push(['faults', `one failed: ${String(faultFailure)}`, false]);
  const restarts = services.flatMap((s) => s.runs.filter((r) => r.exit?.signal === 'SIGKILL').map(() => s.name));
  out.push(['services SIGKILLed and restarted', restarts.join(', ') || 'none', undefined]);
  out.push([
    'answers no retry explains (500, unexpected 4xx)',
    load.ledger.unexpected.length === 0
      ? '0'
      : `${load.ledger.unexpected.length}: ${load.ledger.unexpected.slice(0, 3).join(' · ')}`,
    load.ledger.unexpected.length === 0,
  ]);
  return out;
}

async function buildReport(): Promise<string> {
  const [pg] = await q('SHOW server_version');
  const windowOver = (start: number, end: number) => faults.windowOver(start, end);
  const minutes = minuteTable(t0, load.attempts, [...samples, finalSample], windowOver, TABLES);
  const outcomes = Object.entries(load.ledger.outcomes)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([kind, o]) => [kind, o.ok, o.refused, o.unknown]);
  // Steady state: the longest retention window has passed since the load began.
  const warm = samples.find((sample) => sample.minute >= WARM_UP_MINUTES);
  const last = samples.at(-1)!;
  const growth = TABLES.map((t) => {
    if (!warm || warm === last) return [t, '—', last.rows[t] ?? 0, '—', '—', WHY_SIZE[t] ?? ''];
    const from = warm.rows[t] ?? 0,
      to = last.rows[t] ?? 0;
    const perMinute = (to - from) / (last.minute - warm.minute);
    // Steady: within 5 % of its size after warm-up (a purge every 15 s makes it saw-tooth around a plateau).
    const steady = Math.abs(to - from) <= Math.max(5, 0.05 * from) ? 'yes' : '**no**';
    return [t, from, to, `${perMinute >= 0 ? '+' : ''}${perMinute.toFixed(0)} rows/min`, steady, WHY_SIZE[t] ?? ''];
  });
  return [
    `## Soak ${new Date(t0).toISOString()}: ${MINUTES} min at ${RATE} req/s, two sample services`,
    '',
    `Node ${process.version} · ${cpus().length} CPUs · PostgreSQL ${pg!.server_version} · RabbitMQ at ` +
      `${AMQP_URL.replace(/\/\/[^@/]*@/, '//')} · schema \`${schema}\` · broker prefix \`${prefix}\``,
    `Command: \`SOAK_MINUTES=${MINUTES} SOAK_RATE=${RATE} npm run soak\`. Retention in the services: ` +
      `${Object.entries(RETENTION)
        .map(([k, v]) => `${k}=${v}`)
        .join(', ')}. ` +
      `Load: ${load.issued} operations issued (${load.shed} shed over the in-flight bound); errors are 5xx, cut ` +
      'connections and timeouts, counted per attempt (a write is retried with its key, up to 60 s); "in faults" = ' +
      'the attempt was under way during a fault window or within 10 s after it.',
    '',
    '### Per minute ("after": once the load stopped and the backlog drained)',
    '',
    minutes,
    '',
    `RSS and heap are read after a full GC (node --expose-gc, SIGUSR2 → \`sample-stats\`)` +
      (finalSample.afterGc ? '. ' : ' — GC was not exposed in some sample, so they are before GC. ') +
      drift(),
    '',
    '### Faults',
    '',
    faultTable(t0, load.attempts, faults.windows, tap.duplicatesAt),
    '',
    'Failed attempts by window (an attempt whose span overlapped no window or its 10 s settle is outside):',
    '',
    errorTable(t0, load.attempts, windowOver),
    '',
    '### Operations (final outcome per operation, after retries)',
    '',
    table(['operation', 'ok', 'refused (409/422, final)', 'unknown (gave up)'], outcomes),
    '',
    `### Library table sizes after warm-up (minute ${WARM_UP_MINUTES}) → end of the load`,
    '',
    ...(warm && warm !== last
      ? []
      : [`(The run is shorter than the warm-up of ${WARM_UP_MINUTES} minutes: no steady state to compare.)`, '']),
    table(['table', `minute ${warm?.minute ?? WARM_UP_MINUTES}`, 'end', 'change', 'steady', 'what bounds it'], growth),
    '',
    '### End-of-run checks',
    '',
    table(
      ['check', 'result', 'ok'],
      (await checks()).map(([c, r, ok]) => [c, r, ok === undefined ? '(info)' : ok ? 'yes' : '**NO**']),
    ),
  ].join('\n');
}

/** RSS and heap after GC of each service, from its first sample to its last (a restart starts a new process). */
function drift(): string {
  return services
    .map((service, i) => {
      const taken = samples.filter((sample) => sample.rssMb[i] !== undefined);
      const first = taken[0],
        last = taken.at(-1);
      if (!first || !last) return `${service.name}: no sample`;
      const change = (a: number, b: number) =>
        `${a.toFixed(1)} → ${b.toFixed(1)} MB (${(((b - a) / a) * 100).toFixed(1)} %)`;
      const restarts = service.runs.length - 1;
      const rss = change(first.rssMb[i]!, last.rssMb[i]!),
        heap = change(first.heapMb[i]!, last.heapMb[i]!);
      const restarted = restarts > 0 ? ` (restarted ${restarts}× in between)` : '';
      return `${service.name}: RSS ${rss}, heap ${heap} from minute ${first.minute} to ${last.minute}${restarted}`;
    })
    .join('; ');
}

async function cleanup(): Promise<void> {
  if (KEEP) {
    progress(`kept schema ${schema} and the broker objects prefixed ${prefix} (SOAK_KEEP=1)`);
  } else {
    await admin.raw('DROP SCHEMA IF EXISTS ?? CASCADE', [schema]);
    try {
      const model = await connect(AMQP_URL);
      const channel = await model.createChannel();
      for (const queue of [tapQueue, salesQueue, `${salesQueue}.retry`, `${salesQueue}.dead`])
        await channel.deleteQueue(queue);
      for (const exchange of Object.values(exchanges)) await channel.deleteExchange(exchange);
      await model.close();
    } catch (error) {
      progress(`could not delete the broker objects prefixed ${prefix}: ${String(error)}`);
    }
  }
  await admin.destroy();
}
