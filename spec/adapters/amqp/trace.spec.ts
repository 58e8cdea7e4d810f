// One trace across processes' worth of hops on the real services: an HTTP request's send on Postgres, the outbox row,
// a relay started afterwards (the context comes from the row, not from memory), RabbitMQ, and a consumer's send.
import { randomUUID } from 'node:crypto';
import { context, SpanKind, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider, type ReadableSpan } from '@opentelemetry/sdk-trace';
import { AmqpBus } from '../../../adapters/amqp/index.js';
import { KnexOutbox } from '../../../adapters/knex/index.js';
import { otelModule, OtelTelemetry, tracing } from '../../../adapters/otel/index.js';
import { TOKENS } from '../../../lib/core/index.js';
import { consume, createRelay, type MessageSource } from '../../../lib/messaging/index.js';
import { deleteTopology, isolatedTopology, queueType, rabbit } from '../../support/broker.js';
import { postgres } from '../../support/db.js';
import { expect } from '../../support/helpers.js';
import { createSchema, scopedKnex } from '../../support/sample-db.js';
import { Emit, Emitted, createEffectsTable, faultApp, received } from './app.js';

describe('one trace from a request through the outbox and RabbitMQ to a consumer', function () {
  this.timeout(30_000);
  const exporter = new InMemorySpanExporter();
  const provider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] });
  const tracer = provider.getTracer('usecasecore');
  const contextManager = new AsyncLocalStorageContextManager();
  const cleanups: Array<() => Promise<unknown>> = [];

  before(async function () {
    const [url, pg] = [await rabbit(), await postgres()];
    if (!url || !pg) return this.skip();
    context.setGlobalContextManager(contextManager.enable());
  });
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
    context.disable();
    await provider.shutdown();
  });

  it('keeps one trace id with the right parents, and no orphan span, across a relay started later', async () => {
    const [amqpUrl, pgUrl] = [process.env.AMQP_URL!, process.env.DATABASE_URL!];
    const schema = `amqptrace_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
    await createSchema(pgUrl, schema);
    const db = scopedKnex(pgUrl, schema, 10);
    await createEffectsTable(db);
    const topology = isolatedTopology();
    const queue = topology.queue('traced');
    const app = faultApp(db, amqpUrl, topology.exchanges, {
      relay: false, // nothing publishes until the relay below starts: the send's process has "gone"
      observers: [tracing({ tracer })],
      modules: [otelModule({ tracer })],
    });
    cleanups.push(
      () => db.raw('DROP SCHEMA IF EXISTS ?? CASCADE', [schema]).then(() => db.destroy()),
      () => deleteTopology(amqpUrl, topology.exchanges, [queue]),
      () => app.connection.close(),
    );
    await consume(app.mediator, app.container.get<MessageSource>(TOKENS.MessageSource), queue, [Emitted]);

    const server = tracer.startSpan('POST /emit', { kind: SpanKind.SERVER });
    const id = `traced-${randomUUID().slice(0, 8)}`;
    const sent = await context.with(trace.setSpan(context.active(), server), () =>
      app.mediator.send(Emit.from({ id }), { actor: { id: 'ops' } }),
    );
    server.end();
    expect(sent.ok, JSON.stringify(sent)).to.equal(true);
    expect(exporter.getFinishedSpans().map((s) => s.name)).to.deep.equal(['Emit', 'POST /emit']);

    // A relay with nothing in memory of the send (as after a restart, or in the relay process): its telemetry is
    // new, and the only link to the trace is the row's stored headers.
    const relay = createRelay(
      new KnexOutbox(app.container.get(TOKENS.UnitOfWork), 'ucc_outbox'),
      new AmqpBus(app.connection, { exchanges: topology.exchanges, mandatoryEvents: false, queueType: queueType() }),
      { telemetry: new OtelTelemetry({ tracer }) },
    );
    await relay.drain();
    for (const deadline = Date.now() + 10_000; !received.includes(id); await new Promise((r) => setTimeout(r, 20)))
      if (Date.now() > deadline) expect.fail(`the consumer never received ${id}`);
    for (const deadline = Date.now() + 5_000; !exporter.getFinishedSpans().some((s) => s.name === 'spec.emitted');)
      if (Date.now() > deadline) expect.fail('the consumer’s send span never ended');
      else await new Promise((r) => setTimeout(r, 10));

    const spans = exporter.getFinishedSpans();
    const one = (name: string): ReadableSpan => {
      const found = spans.filter((s) => s.name === name);
      expect(
        found.map((s) => s.name),
        name,
      ).to.deep.equal([name]);
      return found[0]!;
    };
    const [send, publish, processed, handled] = [
      one('Emit'),
      one(`publish ${topology.exchanges.events}`),
      one(`process ${queue}`),
      one('spec.emitted'),
    ];
    const traceId = server.spanContext().traceId;
    expect(
      spans.map((s) => s.spanContext().traceId),
      'one trace',
    ).to.deep.equal(spans.map(() => traceId));
    const parentOf = (span: ReadableSpan) => span.parentSpanContext?.spanId;
    expect(parentOf(send)).to.equal(server.spanContext().spanId);
    expect(parentOf(publish)).to.equal(send.spanContext().spanId);
    expect(parentOf(processed)).to.equal(publish.spanContext().spanId);
    expect(parentOf(handled)).to.equal(processed.spanContext().spanId);
    const ids = new Set(spans.map((s) => s.spanContext().spanId));
    const orphans = spans.filter((s) => s !== spans.find((x) => x.name === 'POST /emit') && !ids.has(parentOf(s)!));
    expect(
      orphans.map((s) => s.name),
      'every span but the root has its parent in the trace',
    ).to.deep.equal([]);
    expect(publish.attributes).to.deep.include({
      'messaging.system': 'rabbitmq',
      'messaging.destination.name': topology.exchanges.events,
      'messaging.rabbitmq.destination.routing_key': 'spec.emitted',
      'messaging.operation.type': 'send',
    });
  });
});
