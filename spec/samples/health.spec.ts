// The sample's probes and trace propagation: GET /health and GET /ready (memory; Postgres + RabbitMQ, with the broker
// blocked and everything closed), and an incoming W3C traceparent carried into the outbox row and the AMQP headers.
import { randomUUID } from 'node:crypto';
import { context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import { connect } from 'amqplib';
import type { Container } from 'inversify';
import knex from 'knex';
import { MemoryBus } from '../../adapters/memory/index.js';
import { TOKENS } from '../../lib/core/index.js';
import type { MessageBus, Outbox, OutboxMessage, RunningRelay } from '../../lib/messaging/index.js';
import { createApp, createMemoryContainer } from '../../samples/app.js';
import { backendFromEnv, type Backend } from '../../samples/backend.js';
import { deleteTopology, isolatedTopology, rabbit } from '../support/broker.js';
import { postgres } from '../support/db.js';
import { expect } from '../support/helpers.js';
import { serve } from '../support/serve.js';

/** A W3C traceparent of a fresh, sampled trace: the ids and the header. */
function traceparent(): { traceId: string; spanId: string; header: string } {
  const traceId = randomUUID().replace(/-/g, '');
  const spanId = randomUUID().replace(/-/g, '').slice(0, 16);
  return { traceId, spanId, header: `00-${traceId}-${spanId}-01` };
}

const manager = { 'X-Actor': 'manager-1', 'X-Roles': 'manager', 'Content-Type': 'application/json' };
const receipt = (productId: string) => JSON.stringify({ productId, binId: 'A', qty: 1 });

/** Records every message the sends stage in the outbox (the row's headers as written at commit). */
function stagedIn(container: Container): OutboxMessage[] {
  const outbox = container.get<Outbox>(TOKENS.Outbox);
  const add = outbox.add.bind(outbox);
  const staged: OutboxMessage[] = [];
  outbox.add = (messages) => {
    staged.push(...messages);
    return add(messages);
  };
  return staged;
}

describe('samples/: GET /health, GET /ready and traceparent', () => {
  describe('on memory', () => {
    const exporter = new InMemorySpanExporter();
    const provider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] });
    let http: { url: string; close(): Promise<void> };
    let container: Container;
    let staged: OutboxMessage[];

    before(async () => {
      // An SDK as `OTEL_TRACES_EXPORTER=console` registers one (samples/telemetry.ts), with an in-memory exporter.
      context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
      trace.setGlobalTracerProvider(provider);
      container = createMemoryContainer();
      staged = stagedIn(container);
      http = await serve(createApp(container).app);
    });
    after(async () => {
      await http?.close();
      await container?.get<RunningRelay>(TOKENS.Relay).stop();
      trace.disable();
      context.disable();
      await provider.shutdown();
    });

    it('should answer /health with 200 {status: ok} and /ready with 200 (memory is always ready)', async () => {
      const health = await fetch(`${http.url}/health`);
      expect(health.status).to.equal(200);
      expect(health.headers.get('cache-control')).to.equal('no-store');
      expect(await health.json()).to.deep.equal({ status: 'ok' });
      const ready = await fetch(`${http.url}/ready`);
      expect(ready.status).to.equal(200);
      expect(await ready.json()).to.deep.equal({ status: 'ready', checks: { database: 'ok', broker: 'ok' } });
    });

    it("should store the request's trace id in the outbox row, its send a child of the caller's span", async () => {
      const caller = traceparent();
      const productId = `sku-${randomUUID().slice(0, 8)}`;
      const reply = await fetch(`${http.url}/inventory/receipts`, {
        method: 'POST',
        headers: { ...manager, traceparent: caller.header },
        body: receipt(productId),
      });
      expect(reply.status).to.equal(200);

      const [row] = staged.filter((message) => message.aggregateId === productId);
      expect(row?.type).to.equal('stock.received');
      const [, traceId, spanId, flags] = row!.headers.traceparent!.split('-');
      expect(traceId, 'the same trace').to.equal(caller.traceId);
      expect(flags).to.equal('01');
      const spans = exporter.getFinishedSpans().filter((span) => span.spanContext().traceId === caller.traceId);
      const send = spans.find((span) => span.name === 'ReceiveStock');
      expect(send?.parentSpanContext?.spanId, "the caller's span is the parent").to.equal(caller.spanId);
      expect(spanId, 'the row carries the send span').to.equal(send?.spanContext().spanId);

      // The relay publishes it in a PRODUCER span of the same trace, whose context the message carries on.
      await container.get<RunningRelay>(TOKENS.Relay).drain();
      const [published] = container.get(MemoryBus).published.filter((message) => message.aggregateId === productId);
      expect(published?.headers.traceparent?.split('-')[1]).to.equal(caller.traceId);
      const producer = exporter.getFinishedSpans().find((span) => span.name === 'publish memory.events');
      expect(producer?.spanContext().traceId).to.equal(caller.traceId);
      expect(producer?.parentSpanContext?.spanId, 'published from the row: a child of the send').to.equal(spanId);
    });

    it('should start a trace of its own for a request without traceparent, or with a malformed one', async () => {
      for (const headers of [{}, { traceparent: '00-zz-zz-01' }]) {
        const productId = `sku-${randomUUID().slice(0, 8)}`;
        const reply = await fetch(`${http.url}/inventory/receipts`, {
          method: 'POST',
          headers: { ...manager, ...headers },
          body: receipt(productId),
        });
        expect(reply.status).to.equal(200);
        const [row] = staged.filter((message) => message.aggregateId === productId);
        expect(row?.headers.traceparent).to.match(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
      }
    });
  });

  describe('on Postgres + RabbitMQ', function () {
    this.timeout(20_000);
    const schema = `sample_health_${randomUUID().replace(/-/g, '').slice(0, 10)}`;
    const topology = isolatedTopology();
    const tap = topology.queue('tap');
    let amqpUrl: string | undefined;
    let backend: Backend | undefined;
    let container: Container;
    let http: { url: string; close(): Promise<void> } | undefined;

    before(async function () {
      const db = await postgres();
      amqpUrl = await rabbit();
      if (!db || !amqpUrl) return this.skip();
      // As `npm start` without OTEL_TRACES_EXPORTER: a context manager, no tracer provider.
      context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
      backend = await backendFromEnv({
        DATABASE_URL: process.env.DATABASE_URL,
        AMQP_URL: amqpUrl,
        UCC_SCHEMA: schema,
        AMQP_PREFIX: topology.prefix,
        PGAPPNAME: 'ucc-samples-health-spec',
      });
      container = backend.container;
      http = await serve(createApp(container).app);
      const model = await connect(amqpUrl);
      const channel = await model.createChannel();
      await channel.assertExchange(topology.exchanges.events, 'topic', { durable: true });
      await channel.assertQueue(tap, { durable: false });
      await channel.bindQueue(tap, topology.exchanges.events, '#');
      await model.close();
    });
    after(async () => {
      context.disable();
      await http?.close();
      if (backend) {
        await container.get<RunningRelay>(TOKENS.Relay).stop();
        await backend.close();
      }
      if (amqpUrl) await deleteTopology(amqpUrl, topology.exchanges, [tap]);
      if (!backend) return; // skipped: no Postgres or broker, so no schema to drop
      const admin = knex({ client: 'pg', connection: process.env.DATABASE_URL!, pool: { min: 0, max: 1 } });
      await admin.raw('DROP SCHEMA IF EXISTS ?? CASCADE', [schema]);
      await admin.destroy();
    });

    it('should answer /health and /ready with 200 while the database and the broker answer', async () => {
      expect((await fetch(`${http!.url}/health`)).status).to.equal(200);
      const ready = await fetch(`${http!.url}/ready`);
      expect(ready.status).to.equal(200);
      expect(await ready.json()).to.deep.equal({ status: 'ready', checks: { database: 'ok', broker: 'ok' } });
    });

    it('should answer /ready with 503 naming the broker while the broker blocks publishing', async () => {
      const bus = container.get<MessageBus>(TOKENS.MessageBus) as MessageBus & { state: MessageBus['state'] };
      const since = new Date().toISOString();
      bus.state = () => ({ blocked: true, reason: 'low on memory', since }); // what a memory alarm makes it say
      try {
        const ready = await fetch(`${http!.url}/ready`);
        expect(ready.status).to.equal(503);
        expect(ready.headers.get('content-type')).to.match(/^application\/problem\+json/);
        const body = (await ready.json()) as { title: unknown; detail: unknown };
        expect(body).to.deep.include({ type: 'about:blank', status: 503, kind: 'unavailable' });
        expect(body.title).to.be.a('string');
        expect(body.detail).to.equal(`broker: blocked by the broker since ${since} (low on memory)`);
        expect((await fetch(`${http!.url}/health`)).status, 'the process is still up').to.equal(200);
      } finally {
        delete (bus as { state?: unknown }).state; // the prototype's again
      }
      expect((await fetch(`${http!.url}/ready`)).status).to.equal(200);
    });

    it("should carry the request's traceparent into the outbox row and the AMQP headers", async () => {
      const caller = traceparent();
      const productId = `sku-${randomUUID().slice(0, 8)}`;
      const reply = await fetch(`${http!.url}/inventory/receipts`, {
        method: 'POST',
        headers: { ...manager, traceparent: caller.header },
        body: receipt(productId),
      });
      expect(reply.status).to.equal(200);
      const db = await postgres();
      const { rows } = await db!.raw(`SELECT headers FROM ??.ucc_outbox WHERE aggregate_id = ?`, [schema, productId]);
      // No SDK registered: no span of its own, the caller's context goes on as it came.
      expect(rows.map((row: { headers: Record<string, string> }) => row.headers.traceparent)).to.deep.equal([
        caller.header,
      ]);

      await container.get<RunningRelay>(TOKENS.Relay).drain();
      const model = await connect(amqpUrl!);
      try {
        const channel = await model.createChannel();
        const message = await channel.get(tap, { noAck: true });
        expect(message && JSON.parse(message.content.toString()).productId).to.equal(productId);
        const header = String(
          (message as { properties: { headers: Record<string, unknown> } }).properties.headers.traceparent,
        );
        expect(header.split('-')[1], 'the same trace id in the AMQP headers').to.equal(caller.traceId);
      } finally {
        await model.close();
      }
    });

    it('should answer /ready with 503 naming both once the broker connection and the pool are closed', async () => {
      await container.get<RunningRelay>(TOKENS.Relay).stop();
      await backend!.close();
      const ready = await fetch(`${http!.url}/ready`);
      expect(ready.status).to.equal(503);
      const { detail } = (await ready.json()) as { detail: string };
      expect(detail).to.match(/^database: .+; broker: the connection is closed \(shutting down\)$/);
      backend = undefined; // closed already
    });
  });
});
