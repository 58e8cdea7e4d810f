// The sample's checkout as a process, over HTTP as a client sees it: 202 and its Location, GET /processes/:id, each
// test card of the stand-in payment provider, stock exact and at most one charge, on the embedded default (PGlite +
// the memory bus) and on Postgres + RabbitMQ.
import { randomUUID } from 'node:crypto';
import { TOKENS } from '../../lib/core/index.js';
import type { MessageSource, RunningRelay } from '../../lib/messaging/index.js';
import { createApp, FEATURES, type SampleApp } from '../../samples/app.js';
import { backendFromEnv } from '../../samples/backend.js';
import { TEST_CARDS } from '../../samples/checkout/index.js';
import { startConsumers, type Consumers } from '../../samples/consumers.js';
import { deleteTopology, isolatedTopology, rabbit } from '../support/broker.js';
import { postgres, sharedPglite } from '../support/db.js';
import { expect } from '../support/helpers.js';
import { createSampleTables, sqlRepositories } from '../../samples/sql.js';
import { Container } from 'inversify';
import { knexModule, migrate } from '../../adapters/knex/index.js';
import { memoryBusModule } from '../../adapters/memory/index.js';
import { expectProblem, listen, manager, unique, type CallOptions, type Reply } from './server-world.js';

interface Opened {
  readonly container: Container;
  queue(name: string): string;
  close(): Promise<void>;
}

/** The embedded default, as npm start runs without variables: PGlite (the run's) and the memory bus. */
async function embedded(): Promise<Opened> {
  const db = await sharedPglite();
  await migrate(db);
  await createSampleTables(db);
  const container = new Container();
  container.load(knexModule({ knex: db }), memoryBusModule(), sqlRepositories({ charges: 'memory' }));
  return { container, queue: (name) => `sample.${name}`, close: async () => undefined };
}

/** Postgres and RabbitMQ, as npm start runs with DATABASE_URL and AMQP_URL, on a schema and exchanges of its own. */
async function pgRabbit(): Promise<Opened | undefined> {
  const [db, amqpUrl] = [await postgres(), await rabbit()];
  if (!db || !amqpUrl) return undefined;
  const schema = `checkout_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
  const topology = isolatedTopology();
  const backend = await backendFromEnv({
    DATABASE_URL: process.env.DATABASE_URL,
    UCC_SCHEMA: schema,
    AMQP_URL: amqpUrl,
    AMQP_PREFIX: topology.prefix,
  });
  return {
    container: backend.container,
    queue: backend.queue,
    close: async () => {
      await backend.close();
      await db.raw('DROP SCHEMA IF EXISTS ?? CASCADE', [schema]);
      await deleteTopology(amqpUrl, topology.exchanges, [backend.queue('sales')]);
    },
  };
}

const TERMINAL = new Set(['completed', 'compensated', 'failed']);

for (const [name, open] of [
  ['embedded: PGlite + memory bus', embedded],
  ['Postgres + RabbitMQ', pgRabbit],
] as const) {
  describe(`samples: checkout as a process (${name})`, function () {
    this.timeout(60_000);
    let sample: SampleApp;
    let opened: Opened | undefined;
    let server: { url: string; close(): Promise<void> } | undefined;
    let consumers: Consumers | undefined;

    before(async function () {
      opened = await open();
      if (!opened) return this.skip();
      sample = createApp(opened.container, { logError: () => undefined });
      server = await listen(sample.app);
      sample.listening(server.url);
      const source = sample.container.get<MessageSource>(TOKENS.MessageSource);
      consumers = startConsumers(FEATURES, sample.mediator, source, opened.queue, () => undefined);
      sample.container.get<RunningRelay>(TOKENS.Relay).start(50); // the delayed jobs (a wait's timeout) come due
    });
    after(async () => {
      await consumers?.stop(2_000);
      await server?.close();
      await sample?.container.get<RunningRelay>(TOKENS.Relay).stop();
      await opened?.close();
    });

    async function call(method: string, path: string, options: CallOptions = {}): Promise<Reply> {
      const headers: Record<string, string> = {};
      if (options.actor !== undefined) headers['X-Actor'] = options.actor;
      if (options.roles !== undefined) headers['X-Roles'] = options.roles;
      if (options.idempotencyKey !== undefined) headers['Idempotency-Key'] = options.idempotencyKey;
      const body = options.body === undefined ? undefined : JSON.stringify(options.body);
      if (body !== undefined) headers['Content-Type'] = 'application/json';
      const res = await fetch(`${server!.url}${path}`, { method, headers, ...(body === undefined ? {} : { body }) });
      const text = await res.text();
      return { status: res.status, headers: res.headers, body: text === '' ? undefined : JSON.parse(text) };
    }

    /** A placed order of `qty` units from a bin stocked with `stock`, owned by a fresh customer. */
    async function order(qty = 2, stock = 5) {
      const [owner, productId, binId] = [unique('customer'), unique('sku'), 'A'];
      expect(
        (await call('POST', '/inventory/receipts', { ...manager, body: { productId, binId, qty: stock } })).status,
      ).to.equal(200);
      const placed = await call('POST', '/orders', { actor: owner, body: { productId, binId, qty } });
      expect(placed.status).to.equal(201);
      return { owner, productId, binId, orderId: placed.body.orderId as string };
    }

    /** Checks the order out with `card`, and follows its process until it ends. */
    async function checkout(o: { owner: string; orderId: string }, card: string, key = randomUUID()) {
      const started = await call('POST', `/orders/${o.orderId}/checkout`, {
        actor: o.owner,
        idempotencyKey: key,
        body: { card },
      });
      expect(started.status, JSON.stringify(started.body)).to.equal(202);
      const { processId } = started.body as { processId: string };
      expect(started.body).to.deep.equal({ processId, state: 'running' });
      expect(started.headers.get('location')).to.equal(`/processes/${processId}`);
      return { started, processId, ended: await ended(o.owner, processId) };
    }

    async function ended(owner: string, processId: string) {
      for (const deadline = Date.now() + 40_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 50))) {
        const got = await call('GET', `/processes/${processId}`, { actor: owner });
        expect(got.status, JSON.stringify(got.body)).to.equal(200);
        if (TERMINAL.has(got.body.state)) return got.body;
      }
      return expect.fail(`checkout ${processId} did not end`);
    }

    const charges = async (orderId: string) => (await call('GET', `/psp/charges?orderId=${orderId}`)).body as any[];
    const stock = async (productId: string) => (await call('GET', `/inventory/${productId}`)).body.bins.A as number;
    const status = async (orderId: string) => (await call('GET', `/orders/${orderId}`)).body.status as string;

    it('should answer 202 with the process, replay it under its key, and complete: shipped, stock taken once', async () => {
      const o = await order(2, 5);
      const key = randomUUID();
      const { processId, ended: done } = await checkout(o, '4242424242424242', key);
      expect(done).to.deep.equal({
        processId,
        type: 'Checkout',
        state: 'completed',
        steps: [
          { name: 'ReserveStock', state: 'completed', attempts: 1 },
          { name: 'ChargeCard', state: 'completed', attempts: 1 },
          { name: 'ShipOrder', state: 'completed', attempts: 1 },
        ],
      });
      const replay = await call('POST', `/orders/${o.orderId}/checkout`, {
        actor: o.owner,
        idempotencyKey: key,
        body: { card: '4242424242424242' },
      });
      expect(replay.status).to.equal(202);
      expect(replay.body).to.deep.equal({ processId, state: 'running' }); // the stored answer: no second process
      expect(replay.headers.get('idempotent-replayed')).to.equal('true');
      expect([await status(o.orderId), await stock(o.productId)]).to.deep.equal(['shipped', 3]);
      expect((await charges(o.orderId)).map((c) => c.status)).to.deep.equal(['succeeded']);
    });

    it('should refuse an unknown order 404, a stranger 403, an order not placed 409, a bad card 422', async () => {
      const o = await order();
      const card = { card: '4242424242424242' };
      const unknown = `/orders/${randomUUID()}/checkout`;
      expectProblem(await call('POST', unknown, { actor: o.owner, body: card }), 404, 'not_found');
      expectProblem(
        await call('POST', `/orders/${o.orderId}/checkout`, { actor: 'mallory', body: card }),
        403,
        'forbidden',
      );
      expectProblem(
        await call('POST', `/orders/${o.orderId}/checkout`, { actor: o.owner, body: { card: 'x' } }),
        422,
        'validation',
      );
      await checkout(o, card.card);
      const again = await call('POST', `/orders/${o.orderId}/checkout`, { actor: o.owner, body: card });
      expectProblem(again, 409, 'invalid_transition');
    });

    it('should show a checkout to its owner and a manager only', async () => {
      const o = await order();
      const { processId } = await checkout(o, '4242424242424242');
      expect((await call('GET', `/processes/${processId}`, manager)).status).to.equal(200);
      expectProblem(await call('GET', `/processes/${processId}`, { actor: 'mallory' }), 403, 'forbidden');
      expectProblem(await call('GET', `/processes/${randomUUID()}`, { actor: o.owner }), 404, 'not_found');
    });

    it('should put the stock back and cancel the order when the card is declined: compensated', async () => {
      const o = await order(2, 5);
      const { ended: undone } = await checkout(o, TEST_CARDS.declined);
      expect(undone.state).to.equal('compensated');
      expect(undone.steps.map((s: { state: string }) => s.state)).to.deep.equal(['compensated', 'failed', 'pending']);
      expect([await status(o.orderId), await stock(o.productId)]).to.deep.equal(['cancelled', 5]);
      expect((await charges(o.orderId)).map((c) => c.status)).to.deep.equal(['declined']);
    });

    it('should fail, insufficient_stock, and cancel the order when the bin holds too little', async () => {
      const o = await order(4, 3);
      const { ended: failed } = await checkout(o, '4242424242424242');
      expect(failed.state).to.equal('failed');
      expect(failed.failure).to.include({ code: 'insufficient_stock' });
      expect([await status(o.orderId), await stock(o.productId)]).to.deep.equal(['cancelled', 3]);
      expect(await charges(o.orderId)).to.deep.equal([]);
    });

    it('should retry a provider that answers 503, slow or pending (confirmed by webhook): one charge each', async () => {
      const cases = [TEST_CARDS.unavailableTwice, TEST_CARDS.slow, TEST_CARDS.confirmsLater];
      const runs = await Promise.all(cases.map(async (card) => ({ card, o: await order(1, 2) })));
      const done = await Promise.all(runs.map(async ({ card, o }) => ({ card, o, ...(await checkout(o, card)) })));
      for (const { card, o, ended: result } of done) {
        expect(result.state, card).to.equal('completed');
        expect(
          (await charges(o.orderId)).map((c) => c.status),
          card,
        ).to.deep.equal(['succeeded']);
        expect([await status(o.orderId), await stock(o.productId)], card).to.deep.equal(['shipped', 1]);
      }
      const flaky = done.find((d) => d.card === TEST_CARDS.unavailableTwice)!;
      expect(flaky.ended.steps[1]).to.deep.include({ name: 'ChargeCard', attempts: 3 });
    });
  });
}
