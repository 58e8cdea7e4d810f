// MoveInventory, the canonical use case: each move writes a movement (GET /inventory/:productId/movements, newest
// first), a move that takes a bin below the low-stock threshold enqueues one LowStockAlert job whose onSuccess
// callback records the alert (GET /inventory/:productId/alerts, GET /jobs/:jobId), and a move replayed with its
// Idempotency-Key answers the same and writes, enqueues and records nothing more — on memory, on the sample's
// default backend (PGlite + the in-process bus) and on Postgres + RabbitMQ, with the service's own workers.
import { queueNames } from '../../lib/core/queues.js';
import { randomUUID } from 'node:crypto';
import type { Container } from 'inversify';
import { TOKENS, typeOf, type Mediator } from '../../lib/core/index.js';
import type { MessageSource, Outbox, OutboxMessage, RunningRelay } from '../../lib/messaging/index.js';
import { createApp, createMemoryContainer, FEATURES } from '../../samples/app.js';
import { backendFromEnv } from '../../samples/backend.js';
import { startConsumers, type Consumers } from '../../samples/consumers.js';
import { LOW_STOCK_THRESHOLD, LowStockAlert, RecordLowStockAlert } from '../../samples/inventory/index.js';
import { deleteTopology, isolatedTopology, rabbit } from '../support/broker.js';
import { postgres } from '../support/db.js';
import { expect } from '../support/helpers.js';
import { serve } from '../support/serve.js';

/** A service under test: its container, how its consumers' queues are named, and how to close what it opened. */
interface Service {
  readonly container: Container;
  queue(name: string): string;
  close(): Promise<void>;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

const services: Array<[name: string, open: () => Promise<Service | undefined>]> = [
  [
    'memory',
    async () => ({ container: createMemoryContainer(), queue: (name) => `sample.${name}`, close: async () => {} }),
  ],
  ['PGlite + the in-process bus (the default)', () => backendFromEnv({})],
  [
    'Postgres + RabbitMQ',
    async () => {
      const [db, amqpUrl] = [await postgres(), await rabbit()];
      if (!db || !amqpUrl) return undefined;
      const schema = `movements_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
      const topology = isolatedTopology();
      const backend = await backendFromEnv({
        DATABASE_URL: process.env.DATABASE_URL,
        UCC_SCHEMA: schema,
        AMQP_URL: amqpUrl,
        AMQP_PREFIX: topology.prefix,
      });
      const jobQueues = [LowStockAlert, RecordLowStockAlert].map((job) =>
        queueNames(topology.exchanges).job(typeOf(job)),
      );
      return {
        container: backend.container,
        queue: backend.queue,
        close: async () => {
          await backend.close();
          await db.raw('DROP SCHEMA IF EXISTS ?? CASCADE', [schema]);
          await deleteTopology(amqpUrl, topology.exchanges, [backend.queue('sales'), ...jobQueues]);
        },
      };
    },
  ],
];

for (const [name, open] of services) movementsSuite(name, open);

function movementsSuite(name: string, open: () => Promise<Service | undefined>): void {
  describe(`samples/: movement history and low-stock alerts on ${name}`, function () {
    this.timeout(20_000);
    let service: Service | undefined;
    let mediator: Mediator;
    let relay: RunningRelay;
    let consumers: Consumers | undefined;
    let http: { url: string; close(): Promise<void> } | undefined;
    /** Every message the sends staged in the outbox (events and jobs), as written in their transactions. */
    const staged: OutboxMessage[] = [];
    const workerLog: string[] = [];

    before(async function () {
      this.timeout(60_000);
      service = await open();
      if (!service) return this.skip();
      const outbox = service.container.get<Outbox>(TOKENS.Outbox);
      const add = outbox.add.bind(outbox);
      outbox.add = (messages) => {
        staged.push(...messages);
        return add(messages);
      };
      const sample = createApp(service.container);
      mediator = sample.mediator;
      relay = service.container.get<RunningRelay>(TOKENS.Relay);
      relay.start(100); // as npm start does: woken after every commit, polling besides
      const source = service.container.get<MessageSource>(TOKENS.MessageSource);
      consumers = startConsumers(FEATURES, mediator, source, service.queue, (line) => workerLog.push(line));
      http = await serve(sample.app);
    });

    after(async () => {
      await http?.close();
      await consumers?.stop(2_000);
      await relay?.stop();
      await service?.close();
    });

    interface Reply {
      status: number;
      headers: Headers;
      body: any;
    }
    const call = async (
      method: 'GET' | 'POST',
      path: string,
      options: { actor?: string; roles?: string; idempotencyKey?: string; body?: unknown } = {},
    ): Promise<Reply> => {
      const headers: Record<string, string> = {};
      if (options.actor) headers['X-Actor'] = options.actor;
      if (options.roles) headers['X-Roles'] = options.roles;
      if (options.idempotencyKey) headers['Idempotency-Key'] = options.idempotencyKey;
      if (options.body !== undefined) headers['Content-Type'] = 'application/json';
      const body = options.body === undefined ? {} : { body: JSON.stringify(options.body) };
      const response = await fetch(`${http!.url}${path}`, { method, headers, ...body });
      const text = await response.text();
      return { status: response.status, headers: response.headers, body: text === '' ? undefined : JSON.parse(text) };
    };
    const unique = (prefix: string) => `${prefix}-${randomUUID().slice(0, 8)}`;
    const receive = async (productId: string, binId: string, qty: number) => {
      const reply = await call('POST', '/inventory/receipts', {
        actor: 'manager-1',
        roles: 'manager',
        body: { productId, binId, qty },
      });
      expect(reply.status, JSON.stringify(reply.body)).to.equal(200);
    };
    const movementsOf = async (productId: string, query = '') => {
      const reply = await call('GET', `/inventory/${productId}/movements${query}`);
      expect(reply.status, JSON.stringify(reply.body)).to.equal(200);
      expect(reply.body.productId).to.equal(productId);
      return reply.body.movements as Array<Record<string, unknown>>;
    };
    const alertsOf = async (productId: string) => {
      const reply = await call('GET', `/inventory/${productId}/alerts`);
      expect(reply.status, JSON.stringify(reply.body)).to.equal(200);
      expect(reply.body.productId).to.equal(productId);
      return reply.body.alerts as Array<Record<string, unknown>>;
    };
    /** Reads until `done` holds: the job runs after the move's commit, on a worker. Fails after `ms`, saying what. */
    const until = async <T>(what: string, read: () => Promise<T>, done: (value: T) => boolean, ms = 10_000) => {
      const deadline = Date.now() + ms;
      for (;;) {
        const value = await read();
        if (done(value)) return value;
        if (Date.now() > deadline)
          throw new Error(`timed out after ${ms} ms waiting for ${what}; last read: ${JSON.stringify(value)}`);
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    };
    /** The jobs of `type` the sends staged for `productId` (a callback's payload holds the job's). */
    const jobsStaged = (type: string, productId: string) =>
      staged.filter((message) => {
        if (message.kind !== 'job' || message.type !== type) return false;
        const payload = message.payload as { productId?: string; payload?: { productId?: string } };
        return (payload.productId ?? payload.payload?.productId) === productId;
      });
    /** The audited runs of `type` by `actor` (a job runs as the actor who enqueued it). */
    const auditedRuns = async (type: string, actor: string) => {
      const reply = await call('GET', '/audit?limit=500');
      expect(reply.status).to.equal(200);
      return (reply.body as Array<{ type: string; actor: string; outcome: string }>).filter(
        (record) => record.type === type && record.actor === actor,
      );
    };

    it('should record each move newest first with its id, actor, quantities and reason; none if refused', async () => {
      const productId = unique('sku');
      await receive(productId, 'A', 20);
      const first = await call('POST', '/inventory/moves', {
        actor: 'clerk-1',
        roles: 'clerk',
        body: { productId, fromBinId: 'A', toBinId: 'B', qty: 3, reason: 'restock shelf' },
      });
      expect(first.status).to.equal(200);
      expect(first.body, 'the answer is as it always was').to.deep.equal({ sourceQtyAfter: 17, destQtyAfter: 3 });
      const second = await call('POST', '/inventory/moves', {
        actor: 'manager-1',
        roles: 'manager',
        body: { productId, fromBinId: 'B', toBinId: 'C', qty: 1, reason: '  damaged box  ' },
      });
      expect(second.body).to.deep.equal({ sourceQtyAfter: 2, destQtyAfter: 1 });
      const refused = await call('POST', '/inventory/moves', {
        actor: 'clerk-1',
        roles: 'clerk',
        body: { productId, fromBinId: 'C', toBinId: 'A', qty: 5, reason: 'too many' },
      });
      expect(refused.status).to.equal(409);

      const movements = await movementsOf(productId);
      expect(movements).to.have.length(2);
      const [newest, older] = movements as [Record<string, unknown>, Record<string, unknown>];
      expect(newest.movementId).to.match(UUID);
      expect(older.movementId).to.match(UUID).and.not.equal(newest.movementId);
      expect(newest.at).to.match(ISO_TIME);
      expect(Date.parse(newest.at as string)).to.be.at.least(Date.parse(older.at as string));
      const { movementId: _newest, at: _newestAt, ...newestFields } = newest;
      const { movementId: _older, at: _olderAt, ...olderFields } = older;
      expect(newestFields).to.deep.equal({
        productId,
        fromBinId: 'B',
        toBinId: 'C',
        qty: 1,
        sourceQtyAfter: 2,
        destQtyAfter: 1,
        actor: 'manager-1',
        reason: 'damaged box', // as validated: trimmed
      });
      expect(olderFields).to.deep.equal({
        productId,
        fromBinId: 'A',
        toBinId: 'B',
        qty: 3,
        sourceQtyAfter: 17,
        destQtyAfter: 3,
        actor: 'clerk-1',
        reason: 'restock shelf',
      });
      expect(await movementsOf(productId, '?limit=1'), '?limit=1: the newest only').to.deep.equal([newest]);
      expect(await movementsOf(unique('never-moved'))).to.deep.equal([]);
    });

    it('should enqueue one LowStockAlert when a bin falls below the threshold, and record its alert once', async () => {
      expect(LOW_STOCK_THRESHOLD).to.equal(5);
      const productId = unique('sku');
      const clerk = { actor: unique('clerk'), roles: 'clerk' };
      await receive(productId, 'A', 6);
      const move = (qty: number, reason: string) =>
        call('POST', '/inventory/moves', { ...clerk, body: { productId, fromBinId: 'A', toBinId: 'B', qty, reason } });
      expect((await move(1, 'still at the threshold')).body).to.deep.equal({ sourceQtyAfter: 5, destQtyAfter: 1 });
      expect(jobsStaged('LowStockAlert', productId), 'at the threshold is not below it').to.deep.equal([]);
      expect((await move(2, 'below it')).body).to.deep.equal({ sourceQtyAfter: 3, destQtyAfter: 3 });
      expect((await move(1, 'low already')).body).to.deep.equal({ sourceQtyAfter: 2, destQtyAfter: 4 });

      const [alert] = await until(
        'the alert',
        () => alertsOf(productId),
        (alerts) => alerts.length > 0,
      );
      const movements = await movementsOf(productId);
      const below = movements.find((movement) => movement.reason === 'below it')!;
      expect(alert).to.deep.include({
        productId,
        binId: 'A',
        qty: 3,
        threshold: 5,
        movementId: below.movementId,
      });
      expect(alert!.alertId).to.match(UUID);
      expect(alert!.at).to.match(ISO_TIME);

      // One job, enqueued by the move that crossed the threshold (not the one out of a bin low already).
      const enqueued = jobsStaged('LowStockAlert', productId);
      expect(enqueued.map((job) => job.id)).to.deep.equal([alert!.jobId]);
      expect(enqueued[0]!.payload).to.deep.equal({
        productId,
        binId: 'A',
        qty: 3,
        threshold: 5,
        movementId: below.movementId,
      });
      const job = await call('GET', `/jobs/${alert!.jobId}`);
      expect(job.status).to.equal(200);
      expect(job.body).to.deep.include({ jobId: alert!.jobId, type: 'LowStockAlert', state: 'succeeded', attempts: 1 });
      expect(job.body.result).to.deep.equal({ alertId: alert!.alertId });

      // Its onSuccess callback, a job of its own, ran once and recorded the alert once; each ran as the clerk.
      await until(
        'the callback job to settle',
        async () => (await auditedRuns('RecordLowStockAlert', clerk.actor)).length,
        (runs) => runs > 0,
      );
      expect(jobsStaged('RecordLowStockAlert', productId)).to.have.length(1);
      expect((await auditedRuns('LowStockAlert', clerk.actor)).map((run) => run.outcome)).to.deep.equal(['ok']);
      expect((await auditedRuns('RecordLowStockAlert', clerk.actor)).map((run) => run.outcome)).to.deep.equal(['ok']);
      expect(await alertsOf(productId)).to.deep.equal([alert]);
      // The alert went out as an event for a notifier to subscribe to, with the same alert id.
      const events = staged.filter((message) => message.type === 'inventory.low_stock');
      expect(
        events.filter((event) => (event.payload as { alertId: string }).alertId === alert!.alertId),
      ).to.have.length(1);
      expect(workerLog, 'every worker started at once').to.deep.equal([]);
    });

    it('should replay a move with its Idempotency-Key: the same answer, no second movement, job or alert', async () => {
      const productId = unique('sku');
      await receive(productId, 'A', 6);
      const move = {
        actor: 'clerk-1',
        roles: 'clerk',
        idempotencyKey: unique('key'),
        body: { productId, fromBinId: 'A', toBinId: 'B', qty: 4, reason: 'to the front' },
      };
      const first = await call('POST', '/inventory/moves', move);
      expect(first.status).to.equal(200);
      expect(first.body).to.deep.equal({ sourceQtyAfter: 2, destQtyAfter: 4 });
      const [movement] = await movementsOf(productId);
      expect(movement!.movementId).to.match(UUID);

      const replayed = await call('POST', '/inventory/moves', move);
      expect(replayed.status).to.equal(200);
      expect(replayed.headers.get('idempotent-replayed')).to.equal('true');
      expect(replayed.body).to.deep.equal(first.body);
      expect(await movementsOf(productId), 'the same movement, and no other').to.deep.equal([movement]);
      expect(jobsStaged('LowStockAlert', productId), 'the replay enqueued nothing').to.have.length(1);

      // Once the first move's alert is recorded, a replay still adds nothing.
      const alerts = await until(
        'the alert',
        () => alertsOf(productId),
        (found) => found.length > 0,
      );
      expect(alerts.map((alert) => alert.movementId)).to.deep.equal([movement!.movementId]);
      expect((await call('POST', '/inventory/moves', move)).body).to.deep.equal(first.body);
      expect(await movementsOf(productId)).to.deep.equal([movement]);
      expect(jobsStaged('LowStockAlert', productId)).to.have.length(1);
      expect(await alertsOf(productId)).to.deep.equal(alerts);
      const inventory = await call('GET', `/inventory/${productId}`);
      expect(inventory.body.bins, 'the stock moved once').to.deep.equal({ A: 2, B: 4 });
    });

    it('should answer a bad limit or product id with the validation problem, naming the field', async () => {
      for (const path of ['/inventory/sku-1/movements', '/inventory/sku-1/alerts']) {
        for (const [limit, message] of [
          ['0', 'Must be at least 1'],
          ['501', 'Must be at most 500'],
          ['ten', 'Must be a whole number'],
        ] as const) {
          const reply = await call('GET', `${path}?limit=${limit}`);
          expect(reply.status, `${path}?limit=${limit}`).to.equal(422);
          expect(reply.headers.get('content-type')).to.match(/^application\/problem\+json/);
          expect(reply.body).to.deep.include({ status: 422, kind: 'validation' });
          expect(reply.body.issues).to.deep.equal([{ path: 'limit', message }]);
        }
        expect((await call('GET', `${path}?limit=500`)).status).to.equal(200);
      }
      const badId = await call('GET', `/inventory/${encodeURIComponent('not an id')}/movements`);
      expect(badId.status).to.equal(422);
      expect(badId.body.issues.map((issue: { path: string }) => issue.path)).to.deep.equal(['productId']);
      const noJob = await call('GET', `/jobs/${randomUUID()}`);
      expect(noJob.status).to.equal(404);
      expect(noJob.body).to.deep.include({ kind: 'not_found' });
    });

    it('should refuse LowStockAlert and RecordLowStockAlert sent directly: they run only as jobs', async () => {
      const manager = { actor: { id: 'manager-1', roles: ['manager'] } };
      const payload = { productId: 'sku-1', binId: 'A', qty: 1, threshold: 5, movementId: randomUUID() };
      const alert = await mediator.send(LowStockAlert.from(payload), manager);
      expect(alert).to.deep.include({ ok: false });
      expect(alert).to.have.nested.property('failure.kind', 'forbidden');
      const settled = {
        jobId: randomUUID(),
        type: 'LowStockAlert',
        payload,
        attempts: 1,
        result: { alertId: randomUUID() },
      };
      const record = await mediator.send(RecordLowStockAlert.from(settled), manager);
      expect(record).to.have.nested.property(
        'failure.message',
        'RecordLowStockAlert runs only as a job a move enqueued, never sent directly',
      );
      expect(await alertsOf('sku-1')).to.deep.equal([]);
    });

    it("should record a job's alert once, when its callback is redelivered or arrives as another message", async () => {
      const productId = unique('sku');
      const jobId = randomUUID();
      const payload = { productId, binId: 'A', qty: 1, threshold: 5, movementId: randomUUID() };
      const settled = { jobId, type: 'LowStockAlert', payload, attempts: 1, result: { alertId: randomUUID() } };
      /** The callback as a worker sends it: the delivered message is the job (work() sets both). */
      const deliver = (messageId: string) => {
        const job: OutboxMessage = {
          id: messageId,
          kind: 'job',
          type: 'RecordLowStockAlert',
          payload: settled,
          occurredAt: new Date().toISOString(),
          headers: {},
        };
        return mediator.send(RecordLowStockAlert.from(settled), {
          actor: { id: 'clerk-1', roles: ['clerk'] },
          message: { id: messageId, consumer: 'spec.RecordLowStockAlert' },
          job,
        });
      };
      const messageId = randomUUID();
      expect(await deliver(messageId)).to.have.property('ok', true);
      expect(await deliver(messageId), 'redelivered: the inbox drops it').to.deep.include({ ok: true, replayed: true });
      expect(await deliver(randomUUID()), 'another message, the same job').to.have.property('ok', true);
      const alerts = await alertsOf(productId);
      expect(alerts.map(({ jobId: id, alertId }) => ({ id, alertId }))).to.deep.equal([
        { id: jobId, alertId: settled.result.alertId },
      ]);
    });
  });
}
