// The sample's checkout with two service processes on Postgres + RabbitMQ (samples/server.ts, real processes): one
// is SIGKILLed while checkouts are in flight. Every checkout still ends completed or compensated, each order has at
// most one succeeded charge at the provider, and every bin holds exactly what its checkout left.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import type { Knex } from 'knex';
import { TEST_CARDS } from '../../samples/checkout/index.js';
import { postgres } from '../support/db.js';
import { deleteTopology, isolatedTopology, rabbit } from '../support/broker.js';
import { queuesNamed } from '../support/rabbitmqctl.js';
import { expect } from '../support/helpers.js';

const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
const manager = { 'X-Actor': 'mia', 'X-Roles': 'manager' };
/** Each order takes 2 of the 5 units its product's bin holds. */
const [STOCK, QTY] = [5, 2];
/** The cards of the run: slow ones (3 s at the provider) are the ones surely in flight when the kill comes. */
const CARDS = [
  ...Array<string>(6).fill(TEST_CARDS.slow),
  ...Array<string>(4).fill(TEST_CARDS.unavailableTwice),
  ...Array<string>(4).fill(TEST_CARDS.declined),
  ...Array<string>(4).fill('4242424242424242'),
];

interface Service {
  readonly proc: ChildProcess;
  readonly url: string;
  readonly exited: Promise<unknown>;
}

/** Spawns `npm start`'s script on the run's schema and broker prefix; resolves once it listens. */
async function startService(env: Record<string, string>, name: string): Promise<Service> {
  const proc = spawn(process.execPath, ['--import', 'tsx', 'samples/server.ts'], {
    cwd: REPO_ROOT,
    env: { ...process.env, PORT: '0', PGAPPNAME: `ucc-checkout-crash-${name}`, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let text = '';
  for (const stream of [proc.stdout!, proc.stderr!]) stream.setEncoding('utf8').on('data', (c: string) => (text += c));
  const exited = once(proc, 'exit');
  const listening = new Promise<string>((resolve) => {
    const check = () => {
      const banner = /usecasecore sample on http:\/\/localhost:(\d+)/.exec(text);
      if (banner) resolve(`http://127.0.0.1:${banner[1]}`);
    };
    proc.stdout!.on('data', check);
  });
  const url = await Promise.race([
    listening,
    exited.then(([code]) => expect.fail(`service ${name} exited (${String(code)}) before listening:\n${text}`)),
  ]);
  return { proc, url, exited };
}

/** A JSON call to `base` as `headers` say; the body parsed. */
async function call(base: string, method: string, path: string, headers: Record<string, string>, body?: unknown) {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { ...headers, ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(15_000),
  });
  const text = await res.text();
  return { status: res.status, body: text === '' ? undefined : JSON.parse(text) };
}

describe('samples: checkout with two service processes, one SIGKILLed mid-flight (Postgres + RabbitMQ)', function () {
  this.timeout(180_000);
  const schema = `checkout_crash_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
  const topology = isolatedTopology();
  const services: Service[] = [];
  let admin: Knex | undefined, amqpUrl: string | undefined;

  before(async function () {
    [admin, amqpUrl] = [await postgres(), await rabbit()];
    if (!admin || !amqpUrl) return this.skip();
  });
  after(async () => {
    for (const { proc } of services) proc.kill('SIGKILL'); // a no-op for one already gone
    await Promise.all(services.map((service) => service.exited));
    if (admin) await admin.raw('DROP SCHEMA IF EXISTS ?? CASCADE', [schema]);
    if (amqpUrl) await deleteTopology(amqpUrl, topology.exchanges, [...queuesNamed(`${topology.prefix}.`).keys()]);
  });

  it('should end every checkout completed or compensated, one charge at most per order, stock exact', async () => {
    const env = { UCC_SCHEMA: schema, AMQP_URL: amqpUrl!, AMQP_PREFIX: topology.prefix };
    const a = await startService(env, 'a'); // migrates first: the second finds the tables
    const b = await startService(env, 'b');
    services.push(a, b);

    const orders = await Promise.all(
      CARDS.map(async (card, i) => {
        const [owner, productId] = [`customer-${i}-${randomUUID().slice(0, 6)}`, `sku-${randomUUID().slice(0, 8)}`];
        const receipt = { productId, binId: 'A', qty: STOCK };
        expect((await call(b.url, 'POST', '/inventory/receipts', manager, receipt)).status).to.equal(200);
        const placed = await call(b.url, 'POST', '/orders', { 'X-Actor': owner }, { productId, binId: 'A', qty: QTY });
        expect(placed.status, JSON.stringify(placed.body)).to.equal(201);
        return { card, owner, productId, orderId: placed.body.orderId as string };
      }),
    );
    const started = await Promise.all(
      orders.map(async (o, i) => {
        const via = i % 2 === 0 ? a : b; // half of them start on the process about to die
        const headers = { 'X-Actor': o.owner, 'Idempotency-Key': randomUUID() };
        const reply = await call(via.url, 'POST', `/orders/${o.orderId}/checkout`, headers, { card: o.card });
        expect(reply.status, JSON.stringify(reply.body)).to.equal(202);
        return { ...o, processId: reply.body.processId as string };
      }),
    );
    const stateOf = async (o: (typeof started)[number]) =>
      (await call(b.url, 'GET', `/processes/${o.processId}`, { 'X-Actor': o.owner })).body.state as string;

    await new Promise((resolve) => setTimeout(resolve, 500)); // the slow charges are at the provider now
    const before = await Promise.all(started.map(stateOf));
    a.proc.kill('SIGKILL');
    await a.exited;
    expect(before.filter((s) => s === 'running').length, 'checkouts in flight at the kill').to.be.greaterThan(0);

    const ends = await Promise.all(
      started.map(async (o) => {
        for (const deadline = Date.now() + 150_000; Date.now() < deadline;) {
          const state = await stateOf(o);
          if (state !== 'running' && state !== 'compensating') return state;
          await new Promise((resolve) => setTimeout(resolve, 200));
        }
        return expect.fail(`checkout ${o.processId} (card ${o.card}) did not end`);
      }),
    );
    for (const [i, o] of started.entries()) {
      const declined = o.card === TEST_CARDS.declined;
      expect(ends[i], o.card).to.equal(declined ? 'compensated' : 'completed');
      const charges = (await call(b.url, 'GET', `/psp/charges?orderId=${o.orderId}`, {})).body as { status: string }[];
      expect(charges.filter((c) => c.status === 'succeeded').length, `succeeded charges of ${o.orderId}`).to.be.at.most(
        declined ? 0 : 1,
      );
      const bins = (await call(b.url, 'GET', `/inventory/${o.productId}`, {})).body.bins as Record<string, number>;
      const order = (await call(b.url, 'GET', `/orders/${o.orderId}`, {})).body as { status: string };
      expect([bins.A, order.status], o.orderId).to.deep.equal(
        declined ? [STOCK, 'cancelled'] : [STOCK - QTY, 'shipped'],
      );
    }
  });
});
