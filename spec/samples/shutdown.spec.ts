// Graceful shutdown of the sample service (samples/server.ts, a real process on Postgres + RabbitMQ): SIGTERM in the
// middle of concurrent HTTP load, then a second process finishes what the first left. Nothing is lost, nothing is
// done twice, and the first process exits 0 within its deadline; also while the broker blocks publishing.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { connect } from 'amqplib';
import type { Knex } from 'knex';
import { KnexAuditStore, KnexUnitOfWork, tables } from '../../adapters/knex/index.js';
import { postgres } from '../support/db.js';
import { deleteTopology, isolatedTopology, rabbit } from '../support/broker.js';

/** The job queues the sample's workers declare (`<prefix>.jobs.<Type>`), deleted with the rest of the topology. */
const jobQueues = (prefix: string) => ['LowStockAlert', 'RecordLowStockAlert'].map((type) => `${prefix}.jobs.${type}`);
import { expect } from '../support/helpers.js';

const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** The bound the sample states (samples/server.ts, SHUTDOWN_DEADLINE_MS). */
const SHUTDOWN_BOUND_MS = 10_000;
/** Requests answered before SIGTERM is sent, so that the load is in full swing when it arrives. */
const SIGTERM_AFTER = 150;
const WORKERS = 16;
const BINS = ['A', 'B', 'C', 'D'];
const STOCK_PER_BIN = 500;
/** How a request the server never answered shows up in fetch: the connection was refused, reset or closed. */
/** How long a service may take to publish and consume what is left (a loaded CI machine is slow, not wrong). */
const DRAIN_MS = 40_000;
const CUT_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'UND_ERR_SOCKET', 'EPIPE']);

interface Service {
  readonly proc: ChildProcess;
  readonly url: string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
  output(): string;
}

type Answer = { status: number; body: string; replayed: boolean };
type Outcome = Answer | { cut: string };

/** A POST with an idempotency key. */
interface Request {
  readonly path: string;
  readonly body?: Record<string, unknown>;
  readonly actor: string;
  readonly roles?: string;
  readonly key: string;
}

/** One request of the load, with what the first process and (when it was cut off) the second one answered. */
interface Sent extends Request {
  readonly kind: 'move' | 'place' | 'pay';
  first?: Outcome;
  answeredAfterSigterm?: boolean;
  /** The fresh process's answer to the same request with the same key: cut-off requests only. */
  retried?: Answer;
  /** The fresh process's answer to the same request with the same key: answered requests only. */
  replay?: Outcome;
}

/** Runs `work` on every item, at most `limit` at a time (the service bounds its connections). */
async function eachLimit<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < items.length) await work(items[next++]!);
  };
  await Promise.all(Array.from({ length: limit }, lane));
}

/** Where a service process keeps its state: its schema, its broker prefix. */
interface Isolation {
  readonly amqpUrl: string;
  readonly schema: string;
  readonly prefix: string;
}

/** Spawns `npm start`'s script on `isolation`; resolves once it listens (rejects if it exits first). */
function startService(isolation: Isolation, name: string, started: Service[]): Promise<Service> {
  const proc = spawn(process.execPath, ['--import', 'tsx', 'samples/server.ts'], {
    cwd: REPO_ROOT,
    env: {
      ...process.env,
      PORT: '0',
      AMQP_URL: isolation.amqpUrl,
      UCC_SCHEMA: isolation.schema,
      AMQP_PREFIX: isolation.prefix,
      PGAPPNAME: `ucc-shutdown-spec-${name}`,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let text = '';
  for (const stream of [proc.stdout!, proc.stderr!]) stream.setEncoding('utf8').on('data', (c: string) => (text += c));
  const exited = once(proc, 'exit').then(([code, signal]) => ({ code, signal, at: Date.now() }));
  return new Promise((resolve, reject) => {
    const check = () => {
      const banner = text.match(/usecasecore sample on http:\/\/localhost:(\d+)/);
      if (!banner) return;
      proc.stdout!.off('data', check);
      const service = { proc, exited, url: `http://127.0.0.1:${banner[1]}`, output: () => text };
      started.push(service);
      resolve(service);
    };
    proc.stdout!.on('data', check);
    void exited.then(({ code }) => reject(new Error(`service ${name} exited (${code}) before listening:\n${text}`)));
  });
}

/** POSTs `request` with its key; a connection refused, reset or closed before the answer is `{ cut }`. */
async function call(base: string, request: Request): Promise<Outcome> {
  const headers: Record<string, string> = { 'X-Actor': request.actor, 'Idempotency-Key': request.key };
  if (request.roles) headers['X-Roles'] = request.roles;
  if (request.body) headers['Content-Type'] = 'application/json';
  try {
    const response = await fetch(`${base}${request.path}`, {
      method: 'POST',
      headers,
      ...(request.body ? { body: JSON.stringify(request.body) } : {}),
      signal: AbortSignal.timeout(15_000), // a hung server fails the spec with a clear TimeoutError
    });
    const body = await response.text();
    return { status: response.status, body, replayed: response.headers.get('idempotent-replayed') === 'true' };
  } catch (error) {
    const code = ((error as Error).cause as { code?: string } | undefined)?.code;
    if (code && CUT_CODES.has(code)) return { cut: code };
    throw error;
  }
}

/** Declares a queue bound to every event of the exchange (as the library declares the exchange). */
async function bindTap(amqpUrl: string, exchange: string, queue: string): Promise<void> {
  const model = await connect(amqpUrl);
  try {
    const channel = await model.createChannel();
    await channel.assertExchange(exchange, 'topic', { durable: true });
    await channel.assertQueue(queue, { durable: true });
    await channel.bindQueue(queue, exchange, '#');
  } finally {
    await model.close();
  }
}

/** Takes every message waiting in `queue`; returns their message ids (duplicates included). */
async function drainTap(amqpUrl: string, queue: string): Promise<string[]> {
  const ids: string[] = [];
  const model = await connect(amqpUrl);
  try {
    const channel = await model.createChannel();
    for (let m = await channel.get(queue, { noAck: true }); m; m = await channel.get(queue, { noAck: true }))
      ids.push(String(m.properties.messageId));
  } finally {
    await model.close();
  }
  return ids;
}

/** Waits (polling, at most `ms`) until `condition` holds: the outbox and the broker are polled, not awaited. */
async function until(what: string, ms: number, condition: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Kills the services still running and waits for them to go: their connections' locks go with them. */
async function killAll(services: readonly Service[]): Promise<void> {
  for (const service of services) if (service.proc.exitCode === null) service.proc.kill('SIGKILL');
  await Promise.all(services.map((service) => service.exited));
}

const isCut = (outcome: Outcome | undefined): outcome is { cut: string } => outcome !== undefined && 'cut' in outcome;

/** The answer an outcome carries; a cut-off request fails the spec here, naming it. */
const answer = (outcome: Outcome | undefined, what: string): Answer => {
  if (outcome === undefined || 'cut' in outcome) throw new Error(`${what}: no answer (${JSON.stringify(outcome)})`);
  return outcome;
};

describe('samples/server.ts: graceful shutdown under load (Postgres + RabbitMQ)', function () {
  this.timeout(60_000);
  let admin: Knex;
  let amqpUrl: string;
  const schema = `shutdown_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
  const topology = isolatedTopology();
  const tap = topology.queue('tap'); // every event the relays publish, to count message ids
  const salesQueue = `${topology.prefix}.sample.sales`; // the sample's consumer queue under AMQP_PREFIX
  const productId = `sku-${randomUUID().slice(0, 8)}`;
  const services: Service[] = [];
  const sent: Sent[] = [];
  let first: Service;
  let second: Service;
  let sigtermAt = 0;
  let firstExit: { code: number | null; signal: NodeJS.Signals | null; at: number };
  let leasedAfterFirstExit = -1;
  let secondExit: { code: number | null; signal: NodeJS.Signals | null; at: number };
  const tapped: string[] = [];

  const rows = async (sql: string, bindings: readonly unknown[] = []) =>
    (await admin.raw(sql.replaceAll('$s', `"${schema}"`), bindings as never)).rows as any[];
  const count = async (sql: string, bindings: readonly unknown[] = []) => Number((await rows(sql, bindings))[0].n);

  /** What a request finally did: its first answer, or the answer to its retry. */
  const final = (request: Sent): Answer =>
    isCut(request.first) ? answer(request.retried, `retry of ${request.key}`) : answer(request.first, request.key);
  const succeeded = (request: Sent) => final(request).status < 300;

  before(async function () {
    this.timeout(90_000);
    const db = await postgres();
    const broker = await rabbit();
    if (!db || !broker) return this.skip();
    admin = db;
    amqpUrl = broker;

    // A queue of the spec's own, bound to every event, declared before anything is published.
    await bindTap(amqpUrl, topology.exchanges.events, tap);
    const isolation = { amqpUrl, schema, prefix: topology.prefix };
    first = await startService(isolation, 'first', services);
    for (const binId of BINS) {
      const receipt = await call(first.url, {
        path: '/inventory/receipts',
        body: { productId, binId, qty: STOCK_PER_BIN },
        actor: 'manager-1',
        roles: 'manager',
        key: `receipt-${binId}-${randomUUID()}`,
      });
      expect(answer(receipt, 'receipt').status).to.equal(200);
    }

    // Load: each worker sends moves and order payments until the first process stops answering it.
    let answered = 0;
    const issue = async (request: Sent): Promise<Outcome> => {
      sent.push(request);
      request.first = await call(first.url, request);
      if (!isCut(request.first)) {
        request.answeredAfterSigterm = sigtermAt > 0;
        if (++answered === SIGTERM_AFTER) {
          sigtermAt = Date.now();
          first.proc.kill('SIGTERM');
        }
      }
      return request.first;
    };
    let serial = 0;
    const worker = async (w: number) => {
      for (;;) {
        const n = ++serial;
        if (n % 5 < 3) {
          const [from, to] = [...BINS].sort(() => Math.random() - 0.5);
          const body = { productId, fromBinId: from, toBinId: to, qty: 1 + (n % 5), reason: `load-${n}` };
          const move = { kind: 'move', path: '/inventory/moves', body, actor: `clerk-${w}`, roles: 'clerk' } as const;
          if (isCut(await issue({ ...move, key: `move-${n}-${randomUUID()}` }))) return;
        } else {
          const buyer = `buyer-${w}`;
          const placeBody = { productId, binId: BINS[n % BINS.length]!, qty: 1 + (n % 3) };
          const placed = await issue({
            kind: 'place',
            path: '/orders',
            body: placeBody,
            actor: buyer,
            key: `place-${n}-${randomUUID()}`,
          });
          if (isCut(placed)) return;
          const { orderId } = JSON.parse(placed.body) as { orderId: string };
          const pay: Sent = {
            kind: 'pay',
            path: `/orders/${orderId}/pay`,
            actor: buyer,
            key: `pay-${n}-${randomUUID()}`,
          };
          if (isCut(await issue(pay))) return;
        }
      }
    };
    await Promise.all(Array.from({ length: WORKERS }, (_, w) => worker(w)));
    firstExit = await first.exited;
    // Right after the exit, before anything else runs: a relay that stopped cleanly holds no lease.
    leasedAfterFirstExit = await count(
      `SELECT count(*) n FROM $s.ucc_outbox WHERE sent_at IS NULL AND claimed_until IS NOT NULL`,
    );

    // A fresh process: retry every cut-off request with its key, and replay every answered one.
    second = await startService(isolation, 'second', services);
    await eachLimit(sent, WORKERS, async (request) => {
      if (isCut(request.first)) request.retried = answer(await call(second.url, request), `retry of ${request.key}`);
      else request.replay = await call(second.url, request);
    });

    // Stop the second process once its relay has published everything and its consumer counted every payment.
    const drained = 'the second process published every event and counted every payment';
    await until(drained, DRAIN_MS, async () => {
      const unsent = await count(`SELECT count(*) n FROM $s.ucc_outbox WHERE sent_at IS NULL`);
      const paid = await count(`SELECT count(*) n FROM $s.ucc_outbox WHERE type = 'order.paid'`);
      return unsent === 0 && (await count(`SELECT count(*) n FROM $s.ucc_inbox`)) === paid;
    });
    second.proc.kill('SIGTERM');
    secondExit = await second.exited;
    tapped.push(...(await drainTap(amqpUrl, tap)));
  });

  after(async () => {
    await killAll(services);
    if (admin) await admin.raw('DROP SCHEMA IF EXISTS ?? CASCADE', [schema]);
    if (amqpUrl) await deleteTopology(amqpUrl, topology.exchanges, [salesQueue, tap, ...jobQueues(topology.prefix)]);
  });

  it('should exit 0 within the bound after SIGTERM mid-load, having answered the requests it had received', () => {
    const log = first.output();
    expect(firstExit, log).to.deep.include({ code: 0, signal: null });
    expect(firstExit.at - sigtermAt, 'SIGTERM → exit, ms').to.be.at.most(SHUTDOWN_BOUND_MS);
    expect(log)
      .to.match(/SIGTERM received/)
      .and.match(/shutdown: complete/);
    expect(log, 'no request was cut after the grace period').not.to.match(/shutdown: cut/);
    expect(log, 'nothing left open: the process ended on its own').not.to.match(/still open/);
    const late = sent.filter((r) => r.answeredAfterSigterm);
    expect(late.length, 'requests in flight at SIGTERM were answered, not dropped').to.be.at.least(1);
    const unexpected = sent
      .map((r) => r.first)
      .filter((o): o is Answer => o !== undefined && !isCut(o) && o.status >= 300 && o.status !== 409);
    expect(unexpected, 'every answer is a success or insufficient_stock (no 5xx while stopping)').to.deep.equal([]);
    expect(sent.filter((r) => isCut(r.first)).length, 'each worker stopped on a refused or reset connection').to.equal(
      WORKERS,
    );
  });

  it('should leave no outbox row leased by the stopped relay (published, or released for the next relay)', () => {
    expect(leasedAfterFirstExit).to.equal(0);
  });

  it('should run every cut-off request exactly once when retried with its key on a fresh process', async () => {
    const cut = sent.filter((r) => isCut(r.first));
    for (const request of cut) expect(final(request).status, request.key).to.be.oneOf([200, 201, 409]);
    // A retry either ran for the first time (nothing had committed) or replayed what the first process committed.
    const replayed = cut.filter((r) => r.retried!.replayed);
    const moves = cut.filter((r) => r.kind === 'move' && succeeded(r));
    const effects = await rows(
      `SELECT payload->>'reason' AS reason, count(*) AS n FROM $s.ucc_outbox WHERE type = 'inventory.moved'
        AND payload->>'reason' = ANY(?) GROUP BY 1`,
      [moves.map((r) => r.body!.reason)],
    );
    expect(
      effects.map((r) => Number(r.n)).every((n) => n === 1),
      JSON.stringify(effects),
    ).to.equal(true);
    expect(effects.length, `${replayed.length} of ${cut.length} retries were replays`).to.equal(moves.length);
  });

  it('should commit every answered request exactly once: replays on the fresh process run nothing', async () => {
    for (const request of sent.filter((r) => !isCut(r.first))) {
      const original = request.first as Answer;
      const replay = answer(request.replay, `replay of ${request.key}`);
      expect(replay, request.key).to.deep.include({ status: original.status, body: original.body });
      if (original.status < 300) expect(replay.replayed, `${request.key} replayed`).to.equal(true);
    }

    // Moves: one inventory.moved row and one audited success per move that succeeded, none for the others.
    const moves = sent.filter((r) => r.kind === 'move');
    const outboxByReason = new Map(
      (
        await rows(
          `SELECT payload->>'reason' AS reason, count(*) AS n FROM $s.ucc_outbox WHERE type = 'inventory.moved'
          GROUP BY 1`,
        )
      ).map((r) => [r.reason as string, Number(r.n)]),
    );
    const auditByReason = new Map(
      (
        await rows(
          `SELECT payload->>'reason' AS reason, count(*) AS n FROM $s.ucc_audit
            WHERE type = 'MoveInventory' AND outcome = 'ok' AND replayed IS NOT TRUE GROUP BY 1`,
        )
      ).map((r) => [r.reason as string, Number(r.n)]),
    );
    const expected = new Map(moves.filter(succeeded).map((r) => [r.body!.reason as string, 1]));
    expect(Object.fromEntries(outboxByReason), 'inventory.moved rows per move').to.deep.equal(
      Object.fromEntries(expected),
    );
    expect(Object.fromEntries(auditByReason), 'audited successes per move').to.deep.equal(Object.fromEntries(expected));

    // Orders: one order per place request (a second run would have made another id), paid once per payment.
    const placed = sent.filter((r) => r.kind === 'place').map((r) => JSON.parse(final(r).body).orderId as string);
    const paid = sent.filter((r) => r.kind === 'pay' && succeeded(r)).map((r) => r.path.split('/')[2]!);
    const orders = await rows(`SELECT order_id, status FROM $s.sample_orders`);
    expect(orders.map((o) => o.order_id).sort(), 'orders').to.deep.equal([...placed].sort());
    expect(
      orders
        .filter((o) => o.status === 'paid')
        .map((o) => o.order_id)
        .sort(),
      'paid orders',
    ).to.deep.equal([...paid].sort());
    for (const [type, ids] of [
      ['order.placed', placed],
      ['order.paid', paid],
    ] as const) {
      const events = await rows(`SELECT payload->>'orderId' AS id FROM $s.ucc_outbox WHERE type = ?`, [type]);
      expect(events.map((e) => e.id).sort(), `${type} rows`).to.deep.equal([...ids].sort());
    }
  });

  it('should conserve stock: every bin holds its receipt plus the moves that succeeded, and nothing else', async () => {
    const expected = Object.fromEntries(BINS.map((bin) => [bin, STOCK_PER_BIN]));
    for (const move of sent.filter((r) => r.kind === 'move' && succeeded(r))) {
      const { fromBinId, toBinId, qty } = move.body as { fromBinId: string; toBinId: string; qty: number };
      expected[fromBinId]! -= qty;
      expected[toBinId]! += qty;
    }
    const bins = await rows(`SELECT bin_id, qty FROM $s.sample_stock WHERE product_id = ?`, [productId]);
    expect(Object.fromEntries(bins.map((b) => [b.bin_id, Number(b.qty)]))).to.deep.equal(expected);
    expect(Object.values(expected).reduce((a, b) => a + b, 0)).to.equal(BINS.length * STOCK_PER_BIN);
  });

  it('should deliver each committed event to a bound queue once, and stop the fresh process cleanly', async () => {
    expect(secondExit, second.output()).to.deep.include({ code: 0, signal: null });
    expect(await count(`SELECT count(*) n FROM $s.ucc_outbox WHERE sent_at IS NULL`), 'unsent rows').to.equal(0);
    const ids = (await rows(`SELECT id FROM $s.ucc_outbox`)).map((r) => r.id as string);
    const duplicates = tapped.filter((id, i) => tapped.indexOf(id) !== i);
    expect(duplicates, 'message ids delivered twice to the bound queue').to.deep.equal([]);
    expect([...tapped].sort(), 'message ids at the bound queue = outbox rows').to.deep.equal([...ids].sort());
  });

  it("should count each payment once in the consumer's projection; nothing left queued, retried or dead", async () => {
    const paid = await rows(
      `SELECT o.qty FROM $s.ucc_outbox x JOIN $s.sample_orders o ON o.order_id = x.payload->>'orderId'
        WHERE x.type = 'order.paid'`,
    );
    const sales = await rows(`SELECT paid_orders, paid_qty FROM $s.sample_sales WHERE product_id = ?`, [productId]);
    expect(sales.map((s) => ({ orders: Number(s.paid_orders), qty: Number(s.paid_qty) }))).to.deep.equal([
      { orders: paid.length, qty: paid.reduce((sum, o) => sum + Number(o.qty), 0) },
    ]);
    const model = await connect(amqpUrl);
    try {
      const channel = await model.createChannel();
      for (const queue of [salesQueue, `${salesQueue}.retry`, `${salesQueue}.dead`])
        expect((await channel.checkQueue(queue)).messageCount, queue).to.equal(0);
    } finally {
      await model.close();
    }
  });

  it('should leave an audit chain that verifies', async () => {
    const { audit, auditHeads } = tables({ schema });
    const verification = await new KnexAuditStore(new KnexUnitOfWork(admin), audit, auditHeads).verify();
    expect(verification).to.deep.include({ ok: true, problems: [], pending: 0 });
    expect(verification.records, 'every request reached a process at least once').to.be.at.least(sent.length);
  });
});

describe('samples/server.ts: graceful shutdown while the broker blocks publishing (memory alarm)', function () {
  this.timeout(120_000);
  let admin: Knex;
  let amqpUrl: string;
  const schema = `shutdown_blocked_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
  const topology = isolatedTopology();
  const tap = topology.queue('tap');
  const services: Service[] = [];
  let restoreWatermark: (() => void) | undefined;

  const rows = async (sql: string) => (await admin.raw(sql.replaceAll('$s', `"${schema}"`))).rows as any[];
  const count = async (sql: string) => Number((await rows(sql))[0].n);
  const unsent = () => count(`SELECT count(*) n FROM $s.ucc_outbox WHERE sent_at IS NULL`);

  before(async function () {
    const db = await postgres();
    const broker = await rabbit();
    if (!db || !broker) return this.skip();
    admin = db;
    amqpUrl = broker;
  });

  after(async () => {
    restoreWatermark?.(); // also when the test failed half-way: never leave the broker in an alarm
    await killAll(services);
    if (admin) await admin.raw('DROP SCHEMA IF EXISTS ?? CASCADE', [schema]);
    if (amqpUrl) {
      const queues = [`${topology.prefix}.sample.sales`, tap, ...jobQueues(topology.prefix)];
      await deleteTopology(amqpUrl, topology.exchanges, queues);
    }
  });

  it('should exit 0 within the bound, hand its blocked batch back to the outbox, and lose no event', async () => {
    await bindTap(amqpUrl, topology.exchanges.events, tap);
    const isolation = { amqpUrl, schema, prefix: topology.prefix };
    const blocked = await startService(isolation, 'blocked', services);
    const productId = `sku-${randomUUID().slice(0, 8)}`;
    const receipt = { path: '/inventory/receipts', actor: 'manager-1', roles: 'manager', key: randomUUID() };
    expect(
      answer(await call(blocked.url, { ...receipt, body: { productId, binId: 'A', qty: 50 } }), 'receipt'),
    ).to.have.property('status', 200);
    await until(
      'the receipt is published (the relay works before the alarm)',
      DRAIN_MS,
      async () => (await unsent()) === 0,
    );

    const watermark = currentWatermark();
    restoreWatermark = () => {
      restoreWatermark = undefined;
      rabbitmqctl('set_vm_memory_high_watermark', ...watermark);
    };
    let exit: Awaited<Service['exited']>, sigtermAt: number, leased: number, heldBack: string[];
    try {
      rabbitmqctl('set_vm_memory_high_watermark', '0.000001');
      // Every move commits (its event waits in the outbox, in Postgres); the relay cannot get them confirmed.
      for (let i = 0; i < 5; i++) {
        const body = { productId, fromBinId: 'A', toBinId: 'B', qty: 1, reason: `blocked-${i}` };
        const move = { path: '/inventory/moves', actor: 'clerk-1', roles: 'clerk', key: randomUUID(), body };
        expect(answer(await call(blocked.url, move), 'move')).to.have.property('status', 200);
      }
      sigtermAt = Date.now();
      blocked.proc.kill('SIGTERM');
      exit = await blocked.exited;
      leased = await count(`SELECT count(*) n FROM $s.ucc_outbox WHERE sent_at IS NULL AND claimed_until IS NOT NULL`);
      heldBack = (await rows(`SELECT id FROM $s.ucc_outbox WHERE sent_at IS NULL`)).map((r) => r.id as string);
    } finally {
      restoreWatermark();
    }
    expect(exit, blocked.output()).to.deep.include({ code: 0, signal: null });
    expect(exit.at - sigtermAt, 'SIGTERM → exit, ms').to.be.at.most(SHUTDOWN_BOUND_MS);
    expect(leased, 'rows left leased by the stopped relay').to.equal(0);
    expect(heldBack, 'the moves committed while the broker blocked them wait in the outbox').to.have.length(5);

    // A fresh process publishes what the stopped one could not.
    const fresh = await startService(isolation, 'after-alarm', services);
    await until('the fresh process published the held-back events', DRAIN_MS, async () => (await unsent()) === 0);
    fresh.proc.kill('SIGTERM');
    expect(await fresh.exited, fresh.output()).to.deep.include({ code: 0, signal: null });
    const tapped = await drainTap(amqpUrl, tap);
    const ids = (await rows(`SELECT id FROM $s.ucc_outbox`)).map((r) => r.id as string);
    expect([...new Set(tapped)].sort(), 'every event reached the bound queue').to.deep.equal([...ids].sort());
    // At least once: frames the blocked process wrote may still be routed once the alarm clears, and the fresh
    // relay publishes those rows again. Only those rows may arrive twice.
    const twice = tapped.filter((id, i) => tapped.indexOf(id) !== i);
    expect(
      twice.filter((id) => !heldBack.includes(id)),
      'duplicates of rows that had been confirmed',
    ).to.deep.equal([]);
  });
});

/** rabbitmqctl, synchronously (the broker-wide alarm must be set and cleared in order). */
function rabbitmqctl(...args: string[]): string {
  return execFileSync('rabbitmqctl', args, { stdio: 'pipe', timeout: 60_000 }).toString();
}

/** The broker's memory watermark as `rabbitmqctl set_vm_memory_high_watermark` arguments, to put it back. */
function currentWatermark(): string[] {
  const raw = rabbitmqctl('eval', 'vm_memory_monitor:get_vm_memory_high_watermark().').trim();
  const absolute = raw.match(/^\{absolute,\s*"?([^"}]+)"?\}$/);
  if (absolute) return ['absolute', absolute[1]!];
  // A value this small is an alarm a crashed run left behind: put the default back instead.
  if (/^[0-9.e-]+$/i.test(raw)) return Number(raw) < 0.01 ? ['0.4'] : [raw];
  throw new Error(`cannot read the memory watermark (rabbitmqctl eval said ${raw}): restore it by hand`);
}
