// End-to-end spec of the sample HTTP service: inventory, orders, audit, idempotency and problem+json over real HTTP.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { connect } from 'node:net';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { expect, use } from 'chai';
import chaiAsPromised from 'chai-as-promised';
import { Container } from 'inversify';
import knex, { type Knex } from 'knex';
import { knexModule, migrate } from '../../adapters/knex/index.js';
import { MemoryBus, memoryBusModule, memoryModule } from '../../adapters/memory/index.js';
import { TOKENS } from '../../lib/core/index.js';
import type { AuditStore } from '../../lib/audit/index.js';
import type { Relay, RunningRelay } from '../../lib/messaging/index.js';
import {
  createApp,
  createHttpServer,
  createMemoryContainer,
  SERVER_LIMITS,
  type SampleApp,
} from '../../samples/app.js';
import { createSampleTables, sqlRepositories } from '../../samples/sql.js';
import { postgres, sharedPglite } from '../support/db.js';
import { INVENTORY_REPOSITORY, ReceiveStock, type InventoryRepository } from '../../samples/inventory/index.js';
import { MemoryOrderRepository, ORDER_REPOSITORY } from '../../samples/orders/index.js';

use(chaiAsPromised);

const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

interface Reply {
  status: number;
  headers: Headers;
  body: any;
}
interface CallOptions {
  actor?: string;
  roles?: string;
  body?: unknown;
  rawBody?: string;
  idempotencyKey?: string;
  headers?: Record<string, string>;
}

/** Listens on a free port; resolves to its base URL and a close function. */
async function listen(app: SampleApp['app']): Promise<{ url: string; close(): Promise<void> }> {
  const server: Server = createServer(app).listen(0);
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** A fresh id, so every test works on its own products, bins and actors. */
function unique(prefix: string): string {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}

/** Sample containers per backend: the HTTP contract must hold on each. */
const backends: Array<[name: string, open: () => Promise<Backend | undefined>]> = [
  ['memory', async () => ({ container: createMemoryContainer(), close: async () => undefined })],
  ['PGlite', async () => sqlBackend(await sharedPglite())],
  [
    'Postgres',
    async () => {
      const db = await postgres();
      if (!db) return undefined;
      // A schema of its own, found through the search path, so runs never see each other's rows.
      const schema = `sample_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
      await db.raw('CREATE SCHEMA ??', [schema]);
      const scoped = knex({ ...db.client.config, searchPath: [schema] });
      const backend = await sqlBackend(scoped);
      return {
        container: backend.container,
        close: async () => {
          await scoped.destroy();
          await db.raw('DROP SCHEMA ?? CASCADE', [schema]);
        },
      };
    },
  ],
];

interface Backend {
  container: Container;
  close(): Promise<void>;
}

async function sqlBackend(db: Knex): Promise<Backend> {
  await migrate(db);
  await createSampleTables(db);
  const container = new Container();
  container.load(knexModule({ knex: db }), memoryBusModule(), sqlRepositories());
  return { container, close: async () => undefined };
}

for (const [name, open] of backends) sampleSuite(name, open);

function sampleSuite(backendName: string, open: () => Promise<Backend | undefined>): void {
  describe(`samples/ HTTP service on ${backendName}`, () => {
    let sample: SampleApp;
    let baseUrl: string;
    let stop: (() => Promise<void>) | undefined;
    let backend: Backend | undefined;

    before(async function () {
      this.timeout(30_000);
      backend = await open();
      if (!backend) return this.skip();
      sample = createApp(backend.container);
      ({ url: baseUrl, close: stop } = await listen(sample.app));
    });

    after(async () => {
      await stop?.();
      await sample?.container.get<RunningRelay>(TOKENS.Relay).stop(); // before its database closes
      await backend?.close();
    });

    async function call(method: string, path: string, options: CallOptions = {}, base = baseUrl): Promise<Reply> {
      const headers: Record<string, string> = {};
      if (options.actor !== undefined) headers['X-Actor'] = options.actor;
      if (options.roles !== undefined) headers['X-Roles'] = options.roles;
      if (options.idempotencyKey !== undefined) headers['Idempotency-Key'] = options.idempotencyKey;
      const body = options.rawBody ?? (options.body === undefined ? undefined : JSON.stringify(options.body));
      if (body !== undefined) headers['Content-Type'] = 'application/json';
      Object.assign(headers, options.headers);
      const response = await fetch(`${base}${path}`, { method, headers, ...(body === undefined ? {} : { body }) });
      const text = await response.text();
      return { status: response.status, headers: response.headers, body: text === '' ? undefined : JSON.parse(text) };
    }

    const manager = { actor: 'manager-1', roles: 'manager' };
    const clerk = { actor: 'clerk-1', roles: 'clerk' };

    async function receive(productId: string, binId: string, qty: number): Promise<void> {
      const reply = await call('POST', '/inventory/receipts', { ...manager, body: { productId, binId, qty } });
      expect(reply.status, JSON.stringify(reply.body)).to.equal(200);
    }

    async function binsOf(productId: string): Promise<Record<string, number>> {
      const reply = await call('GET', `/inventory/${productId}`);
      expect(reply.status).to.equal(200);
      return reply.body.bins;
    }

    async function placeOrder(owner: string, body: { productId: string; binId: string; qty: number }): Promise<string> {
      const reply = await call('POST', '/orders', { actor: owner, body });
      expect(reply.status, JSON.stringify(reply.body)).to.equal(201);
      return reply.body.orderId;
    }

    async function newestAuditId(): Promise<string | undefined> {
      return (await call('GET', '/audit?limit=1')).body[0]?.id;
    }

    async function publishedFor(aggregateId: string) {
      await sample.container.get<Relay>(TOKENS.Relay).drain();
      await sample.container.get(MemoryBus).idle();
      return sample.container.get(MemoryBus).published.filter((message) => message.aggregateId === aggregateId);
    }

    function expectProblem(reply: Reply, status: number, kind: string): void {
      expect(reply.status, JSON.stringify(reply.body)).to.equal(status);
      expect(reply.headers.get('content-type')).to.match(/^application\/problem\+json/);
      expect(reply.body).to.include({ status, kind });
      expect(reply.body.title).to.be.a('string').and.not.empty;
    }

    describe('inventory', () => {
      it('should receive stock, move part of it and report both bins', async () => {
        const productId = unique('sku');
        const receipt = await call('POST', '/inventory/receipts', {
          ...manager,
          body: { productId, binId: 'A', qty: 10 },
        });
        expect(receipt.status).to.equal(200);
        expect(receipt.body).to.deep.equal({ productId, binId: 'A', qtyAfter: 10 });

        const move = await call('POST', '/inventory/moves', {
          ...clerk,
          body: { productId, fromBinId: 'A', toBinId: 'B', qty: 4, reason: 'restock' },
        });
        expect(move.status).to.equal(200);
        expect(move.body).to.deep.equal({ sourceQtyAfter: 6, destQtyAfter: 4 });

        expect(await call('GET', `/inventory/${productId}`)).to.nested.include({
          status: 200,
          'body.productId': productId,
        });
        expect(await binsOf(productId)).to.deep.equal({ A: 6, B: 4 });
      });

      it('should publish stock.received and inventory.moved after commit', async () => {
        const productId = unique('sku');
        await receive(productId, 'A', 5);
        await call('POST', '/inventory/moves', {
          ...manager,
          body: { productId, fromBinId: 'A', toBinId: 'B', qty: 2, reason: 'x' },
        });
        const events = await publishedFor(productId);
        expect(events.map((e) => e.type)).to.deep.equal(['stock.received', 'inventory.moved']);
        expect(events[1]!.payload).to.include({
          productId,
          fromBinId: 'A',
          toBinId: 'B',
          qty: 2,
          sourceQtyAfter: 3,
          destQtyAfter: 2,
        });
      });

      it('should answer an unknown product with empty bins', async () => {
        const productId = unique('never-stocked');
        expect((await call('GET', `/inventory/${productId}`)).body).to.deep.equal({ productId, bins: {} });
      });

      it('should answer 401 to a write without X-Actor', async () => {
        const productId = unique('sku');
        expectProblem(
          await call('POST', '/inventory/receipts', { body: { productId, binId: 'A', qty: 1 } }),
          401,
          'unauthenticated',
        );
        expectProblem(
          await call('POST', '/inventory/receipts', {
            actor: '  ',
            roles: 'manager',
            body: { productId, binId: 'A', qty: 1 },
          }),
          401,
          'unauthenticated',
        );
        expectProblem(
          await call('POST', '/orders', { body: { productId, binId: 'A', qty: 1 } }),
          401,
          'unauthenticated',
        );
        expect(await binsOf(productId)).to.deep.equal({});
      });

      it('should answer 403 to a clerk receiving stock and write nothing', async () => {
        const productId = unique('sku');
        const reply = await call('POST', '/inventory/receipts', { ...clerk, body: { productId, binId: 'A', qty: 5 } });
        expectProblem(reply, 403, 'forbidden');
        expect(reply.body.detail).to.equal('Only managers may receive stock');
        expect(await binsOf(productId)).to.deep.equal({});
      });

      it('should answer 422 with issue paths for invalid input, writing nothing and auditing nothing', async () => {
        const productId = unique('sku');
        await receive(productId, 'A', 5);
        const auditBefore = await newestAuditId();

        const negative = await call('POST', '/inventory/receipts', {
          ...manager,
          body: { productId, binId: 'A', qty: -1 },
        });
        expectProblem(negative, 422, 'validation');
        expect(negative.body.issues).to.deep.equal([{ path: 'qty', message: 'Must be at least 1' }]);

        const missing = await call('POST', '/inventory/moves', {
          ...clerk,
          body: { productId, fromBinId: 'A', qty: 2, reason: 'x' },
        });
        expectProblem(missing, 422, 'validation');
        expect(missing.body.issues.map((issue: { path: string }) => issue.path)).to.deep.equal(['toBinId']);

        const sameBin = await call('POST', '/inventory/moves', {
          ...clerk,
          body: { productId, fromBinId: 'A', toBinId: 'A', qty: 1, reason: 'x' },
        });
        expect(sameBin.body.issues).to.deep.equal([{ path: 'toBinId', message: 'Must differ from fromBinId' }]);

        expect(await binsOf(productId)).to.deep.equal({ A: 5 });
        expect(await newestAuditId()).to.equal(auditBefore);
      });

      it('should answer 409 insufficient_stock to a move larger than the source bin and change nothing', async () => {
        const productId = unique('sku');
        await receive(productId, 'A', 3);
        const reply = await call('POST', '/inventory/moves', {
          ...clerk,
          body: { productId, fromBinId: 'A', toBinId: 'B', qty: 4, reason: 'x' },
        });
        expectProblem(reply, 409, 'domain');
        expect(reply.body).to.deep.include({ code: 'insufficient_stock', details: { available: 3, requested: 4 } });
        expect(await binsOf(productId)).to.deep.equal({ A: 3 });
        expect((await publishedFor(productId)).map((e) => e.type)).to.deep.equal(['stock.received']);
      });
    });

    describe('orders', () => {
      it('should run place → pay → ship, take the stock and publish each event once with distinct ids', async () => {
        const productId = unique('sku');
        await receive(productId, 'A', 10);
        const placed = await call('POST', '/orders', { actor: 'alice', body: { productId, binId: 'A', qty: 3 } });
        expect(placed.status).to.equal(201);
        expect(placed.body.status).to.equal('placed');
        const { orderId } = placed.body;
        expect(orderId).to.match(/^[0-9a-f-]{36}$/);

        expect((await call('POST', `/orders/${orderId}/pay`, { actor: 'alice' })).body).to.deep.equal({
          orderId,
          status: 'paid',
        });
        expect((await call('POST', `/orders/${orderId}/ship`, clerk)).body).to.deep.equal({
          orderId,
          status: 'shipped',
        });

        expect((await call('GET', `/orders/${orderId}`)).body).to.deep.equal({
          orderId,
          status: 'shipped',
          productId,
          binId: 'A',
          qty: 3,
          owner: 'alice',
        });
        expect(await binsOf(productId)).to.deep.equal({ A: 7 });

        const events = await publishedFor(orderId);
        expect(events.map((e) => e.type)).to.deep.equal(['order.placed', 'order.paid', 'order.shipped']);
        expect(new Set(events.map((e) => e.id)).size).to.equal(3);
        expect(events[0]!.payload).to.deep.equal({ orderId, productId, binId: 'A', qty: 3, owner: 'alice' });
        expect(events[2]!.payload).to.deep.equal({ orderId, productId, binId: 'A', qty: 3 });
      });

      it('should answer 403 when someone other than the owner pays, leaving the order placed', async () => {
        const orderId = await placeOrder('alice', { productId: unique('sku'), binId: 'A', qty: 1 });
        const reply = await call('POST', `/orders/${orderId}/pay`, { actor: 'mallory', roles: 'manager' });
        expectProblem(reply, 403, 'forbidden');
        expect((await call('GET', `/orders/${orderId}`)).body.status).to.equal('placed');
      });

      it('should answer 409 invalid_transition with from, to and allowed when shipping an unpaid order', async () => {
        const orderId = await placeOrder('alice', { productId: unique('sku'), binId: 'A', qty: 1 });
        const reply = await call('POST', `/orders/${orderId}/ship`, clerk);
        expectProblem(reply, 409, 'invalid_transition');
        expect(reply.body).to.deep.include({ from: 'placed', to: 'shipped', allowed: ['paid'] });
      });

      it('should answer 409 insufficient_stock when shipping more than the bin holds, keeping the order paid', async () => {
        const productId = unique('sku');
        await receive(productId, 'A', 2);
        const orderId = await placeOrder('alice', { productId, binId: 'A', qty: 5 });
        await call('POST', `/orders/${orderId}/pay`, { actor: 'alice' });

        const reply = await call('POST', `/orders/${orderId}/ship`, manager);
        expectProblem(reply, 409, 'domain');
        expect(reply.body.code).to.equal('insufficient_stock');
        expect((await call('GET', `/orders/${orderId}`)).body.status).to.equal('paid');
        expect(await binsOf(productId)).to.deep.equal({ A: 2 });
        expect((await publishedFor(orderId)).map((e) => e.type)).to.deep.equal(['order.placed', 'order.paid']);
      });

      it('should let a manager or the owner cancel, forbid anyone else, and refuse to pay a cancelled order', async () => {
        const productId = unique('sku');
        const byManager = await placeOrder('alice', { productId, binId: 'A', qty: 1 });
        expectProblem(await call('POST', `/orders/${byManager}/cancel`, clerk), 403, 'forbidden');
        expect((await call('POST', `/orders/${byManager}/cancel`, manager)).body).to.deep.equal({
          orderId: byManager,
          status: 'cancelled',
        });

        const byOwner = await placeOrder('bob', { productId, binId: 'A', qty: 1 });
        await call('POST', `/orders/${byOwner}/pay`, { actor: 'bob' });
        expect((await call('POST', `/orders/${byOwner}/cancel`, { actor: 'bob' })).status).to.equal(200);

        const payCancelled = await call('POST', `/orders/${byManager}/pay`, { actor: 'alice' });
        expectProblem(payCancelled, 409, 'invalid_transition');
        expect(payCancelled.body).to.deep.include({ from: 'cancelled', to: 'paid', allowed: ['placed'] });
        expect((await publishedFor(byManager)).map((e) => e.type)).to.deep.equal(['order.placed', 'order.cancelled']);
      });

      it('should answer 404 for an unknown order and 422 for an id that is not an order id', async () => {
        const orderId = randomUUID();
        expectProblem(await call('GET', `/orders/${orderId}`), 404, 'not_found');
        expectProblem(await call('POST', `/orders/${orderId}/pay`, { actor: 'alice' }), 404, 'not_found');
        const malformed = await call('POST', '/orders/not-an-id/cancel', manager);
        expectProblem(malformed, 422, 'validation');
        expect(malformed.body.issues[0].path).to.equal('orderId');
      });
    });

    describe('idempotency', () => {
      it('should replay the same status and body with Idempotent-Replayed and move the stock once', async () => {
        const productId = unique('sku');
        await receive(productId, 'A', 10);
        const move = {
          ...clerk,
          idempotencyKey: unique('key'),
          body: { productId, fromBinId: 'A', toBinId: 'B', qty: 3, reason: 'x' },
        };
        const first = await call('POST', '/inventory/moves', move);
        const second = await call('POST', '/inventory/moves', move);
        expect(first.status).to.equal(200);
        expect(first.headers.get('idempotent-replayed')).to.equal(null);
        expect(second.status).to.equal(200);
        expect(second.headers.get('idempotent-replayed')).to.equal('true');
        expect(second.body).to.deep.equal(first.body);
        expect(await binsOf(productId)).to.deep.equal({ A: 7, B: 3 });
      });

      it('should replay a stored order creation with its 201 and the same order id', async () => {
        const order = {
          actor: 'alice',
          idempotencyKey: unique('key'),
          body: { productId: unique('sku'), binId: 'A', qty: 1 },
        };
        const first = await call('POST', '/orders', order);
        const second = await call('POST', '/orders', order);
        expect([first.status, second.status]).to.deep.equal([201, 201]);
        expect(second.body).to.deep.equal(first.body);
        expect(second.headers.get('idempotent-replayed')).to.equal('true');
      });

      it('should answer 422 idempotency_mismatch when a key is reused with another body', async () => {
        const productId = unique('sku');
        await receive(productId, 'A', 10);
        const idempotencyKey = unique('key');
        const move = (qty: number) => ({
          ...clerk,
          idempotencyKey,
          body: { productId, fromBinId: 'A', toBinId: 'B', qty, reason: 'x' },
        });
        expect((await call('POST', '/inventory/moves', move(3))).status).to.equal(200);
        expectProblem(await call('POST', '/inventory/moves', move(4)), 422, 'idempotency_mismatch');
        expect(await binsOf(productId)).to.deep.equal({ A: 7, B: 3 });
      });
    });

    describe('audit', () => {
      it('should list records newest first with ok, forbidden, invalid_transition and domain outcomes', async () => {
        const actor = unique('clerk');
        const asClerk = { actor, roles: 'clerk' };
        const productId = unique('sku');
        await call('POST', '/inventory/receipts', { ...asClerk, body: { productId, binId: 'A', qty: 1 } });
        const orderId = await placeOrder(actor, { productId, binId: 'A', qty: 1 });
        await call('POST', `/orders/${orderId}/ship`, asClerk);
        await call('POST', '/inventory/moves', {
          ...asClerk,
          body: { productId, fromBinId: 'A', toBinId: 'B', qty: 1, reason: 'x' },
        });

        const reply = await call('GET', '/audit?limit=20');
        expect(reply.status).to.equal(200);
        const mine = reply.body.filter((record: { actor: string }) => record.actor === actor);
        expect(mine.map(({ type, outcome, code }: Record<string, string>) => ({ type, outcome, code }))).to.deep.equal([
          { type: 'MoveInventory', outcome: 'domain', code: 'insufficient_stock' },
          { type: 'ShipOrder', outcome: 'invalid_transition', code: undefined },
          { type: 'PlaceOrder', outcome: 'ok', code: undefined },
          { type: 'ReceiveStock', outcome: 'forbidden', code: undefined },
        ]);
        expect(Object.keys(mine[1]).sort()).to.deep.equal(['actor', 'at', 'id', 'outcome', 'type']);
        const times = mine.map((record: { at: string }) => Date.parse(record.at));
        expect(times).to.deep.equal([...times].sort((a, b) => b - a));
      });

      it('should honour ?limit and reject a limit out of range', async () => {
        await receive(unique('sku'), 'A', 1);
        await receive(unique('sku'), 'A', 1);
        expect((await call('GET', '/audit?limit=2')).body).to.have.length(2);
        const zero = await call('GET', '/audit?limit=0');
        expectProblem(zero, 422, 'validation');
        expect(zero.body.issues[0].path).to.equal('limit');
      });
    });

    describe('HTTP errors', () => {
      it('should answer a __proto__ body with a typed failure and leave Object.prototype alone', async () => {
        const polluting = await call('POST', '/inventory/receipts', {
          ...manager,
          rawBody: '{"__proto__":{"isAdmin":true}}',
        });
        expectProblem(polluting, 422, 'validation');
        expect(polluting.body.issues.map((issue: { path: string }) => issue.path)).to.include.members([
          'productId',
          'binId',
          'qty',
        ]);

        const productId = unique('sku');
        const smuggled = await call('POST', '/inventory/receipts', {
          ...manager,
          rawBody: `{"productId":"${productId}","binId":"A","qty":1,"__proto__":{"isAdmin":true}}`,
        });
        expect(smuggled.status).to.equal(200);
        expect(({} as any).isAdmin).to.equal(undefined);
      });

      it('should answer malformed JSON with 400 and an oversized body with 413, both problem+json', async () => {
        expectProblem(
          await call('POST', '/inventory/receipts', { ...manager, rawBody: '{"productId":' }),
          400,
          'malformed_json',
        );
        const huge = JSON.stringify({ productId: 'p', binId: 'A', qty: 1, padding: 'x'.repeat(64 * 1024) });
        expectProblem(
          await call('POST', '/inventory/receipts', { ...manager, rawBody: huge }),
          413,
          'payload_too_large',
        );
      });

      if (backendName === 'memory')
        it('should answer a repeated X-Actor or X-Roles header with 400, never a joined identity', async () => {
          const server = await listen(createApp(createMemoryContainer()).app);
          try {
            const raw = async (lines: string[]) => {
              const socket = connect(Number(new URL(server.url).port), '127.0.0.1');
              socket.end(
                `POST /inventory/receipts HTTP/1.1\r\nHost: x\r\nConnection: close\r\n${lines.join('\r\n')}\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}`,
              );
              let text = '';
              for await (const chunk of socket) text += String(chunk);
              return text;
            };
            for (const lines of [
              ['X-Actor: alice', 'X-Actor: mallory', 'X-Roles: manager'],
              ['X-Actor: alice', 'X-Roles: clerk', 'X-Roles: manager'],
            ]) {
              const reply = await raw(lines);
              expect(reply).to.match(/^HTTP\/1\.1 400 /);
              expect(reply).to.include('"kind":"bad_request"').and.include('Send one X-');
            }
          } finally {
            await server.close();
          }
        });

      if (backendName === 'memory')
        it('should serve with timeouts and a connection bound chosen on purpose', () => {
          const server = createHttpServer(createApp(createMemoryContainer()).app);
          expect({
            headersTimeout: server.headersTimeout,
            requestTimeout: server.requestTimeout,
            keepAliveTimeout: server.keepAliveTimeout,
            maxConnections: server.maxConnections,
          }).to.deep.equal(SERVER_LIMITS);
        });

      if (backendName === 'memory')
        it('should answer client mistakes the framework catches with 4xx problem+json, never 500', async () => {
          const logged: unknown[] = [];
          const { app } = createApp(createMemoryContainer(), { logError: (e) => logged.push(e) });
          const server = await listen(app);
          try {
            const at = (path: string, options: CallOptions = {}) => call('POST', path, options, server.url);
            expectProblem(await call('GET', '/inventory/%E0%A4%A', {}, server.url), 400, 'bad_request');
            const charset = { 'Content-Type': 'application/json; charset=latin-9' };
            expectProblem(
              await at('/inventory/receipts', { ...manager, rawBody: '{}', headers: charset }),
              415,
              'unsupported_media_type',
            );
            const encoding = { 'Content-Encoding': 'br2' };
            expectProblem(
              await at('/inventory/receipts', { ...manager, rawBody: '{}', headers: encoding }),
              415,
              'unsupported_media_type',
            );
            const gzip = { 'Content-Encoding': 'gzip' };
            expectProblem(
              await at('/inventory/receipts', { ...manager, rawBody: 'not gzip', headers: gzip }),
              400,
              'bad_request',
            );
            expect(logged, 'a client mistake is not logged as a server error').to.deep.equal([]);
          } finally {
            await server.close();
          }
        });

      // Backend-independent checks run once, in the memory suite.
      if (backendName === 'memory')
        it('should answer 500 problem+json revealing nothing when a repository throws, and audit the error', async () => {
          const container = new Container();
          container.load(memoryModule());
          const broken: InventoryRepository = {
            lockBins: () => Promise.reject(new Error('disk on fire')),
            setQuantity: () => Promise.reject(new Error('disk on fire')),
            bins: () => Promise.reject(new Error('disk on fire')),
          };
          container.bind(INVENTORY_REPOSITORY).toConstantValue(broken);
          container.bind(ORDER_REPOSITORY).to(MemoryOrderRepository).inSingletonScope();
          const logged: unknown[] = [];
          const failing = createApp(container, { logError: (error) => logged.push(error) });
          const server = await listen(failing.app);
          try {
            const reply = await call(
              'POST',
              '/inventory/receipts',
              { ...manager, body: { productId: 'p', binId: 'A', qty: 1 } },
              server.url,
            );
            expectProblem(reply, 500, 'internal');
            expect(JSON.stringify(reply.body)).not.to.include('disk on fire');
            expect(logged).to.have.length(1);
            const [newest] = await container.get<AuditStore>(TOKENS.AuditStore).list({ limit: 1, order: 'desc' });
            expect(newest).to.include({ type: 'ReceiveStock', outcome: 'error' });
            await expect(
              failing.mediator.send(ReceiveStock.from({ productId: 'p', binId: 'A', qty: 1 }), {
                actor: { id: 'm', roles: ['manager'] },
              }),
            ).to.be.rejectedWith('disk on fire');
          } finally {
            await server.close();
          }
        });
    });

    if (backendName === 'memory')
      describe('npm start (samples/server.ts)', () => {
        let child: ChildProcess | undefined;
        let groupRunning = false;

        afterEach(() => {
          if (child && groupRunning) process.kill(-child.pid!, 'SIGKILL'); // a failed test must not leave the server up
        });

        it('should print its URL and adapters, serve requests and shut down on SIGTERM', async function () {
          this.timeout(30_000);
          const port = await freePort();
          child = spawn('npx', ['tsx', 'samples/server.ts'], {
            cwd: REPO_ROOT,
            env: { ...process.env, PORT: String(port), DATABASE_URL: '', AMQP_URL: '', PGLITE_DIR: '' },
            detached: true,
            stdio: ['ignore', 'pipe', 'pipe'],
          });
          groupRunning = true;
          const closed = once(child, 'close').then(() => {
            groupRunning = false;
          }); // every process let go of stdout
          const output = captureStdout(child);

          const banner = await output.waitFor(/usecasecore sample on (http:\/\/localhost:\d+) — (.*)/);
          expect(banner[1]).to.equal(`http://localhost:${port}`);
          expect(banner[2]).to.equal(
            'database: PGlite (embedded, in memory — set PGLITE_DIR to keep data), bus: memory (in-process)',
          );

          const reply = await call('GET', '/inventory/sku-1', {}, banner[1]);
          expect(reply).to.deep.include({ status: 200, body: { productId: 'sku-1', bins: {} } });

          process.kill(-child.pid!, 'SIGTERM'); // the whole group: npx does not forward signals to tsx
          await closed;
          expect(output.text()).to.include('SIGTERM received, shutting down');
        });
      });
  });
}

/** A port nothing listens on right now. */
async function freePort(): Promise<number> {
  const probe = createServer().listen(0);
  await once(probe, 'listening');
  const { port } = probe.address() as AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

/** Collects a child's stdout; `waitFor` resolves on the first match, or rejects if the child's output ends first. */
function captureStdout(child: ChildProcess): { text(): string; waitFor(pattern: RegExp): Promise<RegExpMatchArray> } {
  let text = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    text += chunk;
  });
  child.stderr!.resume();
  return {
    text: () => text,
    waitFor(pattern) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const match = text.match(pattern);
          if (!match) return;
          child.stdout!.off('data', check);
          child.off('close', early);
          resolve(match);
        };
        const early = () => reject(new Error(`server exited before printing ${pattern}; stdout: ${text}`));
        child.stdout!.on('data', check);
        child.once('close', early);
        check();
      });
    },
  };
}
