// OpenTelemetry of processes: one trace per process (each step's send under the process's span, the send that
// staged it, or the event that ended its wait, linked), and metrics of processes started and ended and step latency.
import 'reflect-metadata';
import { context, type SpanContext } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics';
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider, type ReadableSpan } from '@opentelemetry/sdk-trace';
import { Container } from 'inversify';
import { memoryModule } from '../../../adapters/memory/index.js';
import { otelModule, tracing } from '../../../adapters/otel/index.js';
import { unwrap, type Middleware } from '../../../lib/core/index.js';
import { settled } from '../../../lib/testing/index.js';
import { expect } from '../../support/helpers.js';
import { Checkout, MemoryShop, SHOP, Settle } from '../../lib/processes/checkout.js';
import { ann, checkoutApp } from '../../lib/processes/world.js';

describe('OpenTelemetry of processes (usecasecore/otel, memory)', () => {
  const exporter = new InMemorySpanExporter();
  const provider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] });
  const tracer = provider.getTracer('usecasecore');
  const contextManager = new AsyncLocalStorageContextManager();
  let metricExporter: InMemoryMetricExporter, reader: PeriodicExportingMetricReader, meters: MeterProvider;

  before(() => context.setGlobalContextManager(contextManager.enable()));
  after(async () => {
    context.disable();
    await provider.shutdown();
  });
  beforeEach(() => {
    exporter.reset();
    metricExporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
    reader = new PeriodicExportingMetricReader({ exporter: metricExporter, exportIntervalMillis: 3_600_000 });
    meters = new MeterProvider({ readers: [reader] });
  });
  afterEach(() => meters.shutdown());

  /** The checkout world on memory, traced: tracing() first in the stack, otelModule() as the Telemetry port. */
  async function traced() {
    const container = new Container();
    container.load(memoryModule(), otelModule({ tracer, meterProvider: meters }));
    container.bind(SHOP).to(MemoryShop).inSingletonScope();
    const first: Middleware = tracing({ tracer, meterProvider: meters });
    const app = await checkoutApp(container, 'spec', true, [first]);
    const start = async (card: string) => {
      const orderId = `o-${Math.random().toString(16).slice(2, 10)}`;
      const { processId } = unwrap(await app.mediator.send(new Checkout({ orderId, qty: 1, card }), ann));
      await settled(container, 10_000);
      return { processId, orderId };
    };
    return { ...app, container, start };
  }

  const named = (name: string) => exporter.getFinishedSpans().filter((s) => s.name === name);
  const parentOf = (span: ReadableSpan) =>
    exporter.getFinishedSpans().find((s) => s.spanContext().spanId === span.parentSpanContext?.spanId);
  /** The span's ancestors' names, nearest first. */
  const ancestry = (span: ReadableSpan): string[] => {
    const parent = parentOf(span);
    return parent ? [parent.name, ...ancestry(parent)] : [];
  };
  const linked = (span: ReadableSpan): SpanContext[] => span.links.map((l) => l.context);

  it('should put every step of a process in one trace under its span, each linked to what staged it', async () => {
    const app = await traced();
    try {
      await app.start('4242');
      const [processSpan] = named('Checkout process');
      expect(processSpan, 'one process span').to.not.equal(undefined);
      expect(processSpan!.attributes).to.deep.include({ 'usecasecore.process.type': 'Checkout' });
      expect(ancestry(processSpan!)).to.deep.equal(['Checkout'], 'a child of the send that started it');
      const steps = ['Reserve', 'Charge', 'Ship'].map((name) => {
        const spans = named(name);
        expect(spans, name).to.have.length(1);
        return spans[0]!;
      });
      const traceId = processSpan!.spanContext().traceId;
      for (const step of steps) {
        expect(step.spanContext().traceId, step.name).to.equal(traceId);
        const [job, consumer, publish, process] = ancestry(step);
        expect(job, step.name).to.equal('usecasecore.ProcessStep'); // the step job's send
        expect(consumer, step.name).to.match(/^process /); // the delivery's CONSUMER span
        expect(publish, step.name).to.match(/^publish /);
        expect(process, step.name).to.equal('Checkout process');
      }
      const charged = parentOf(parentOf(named('Charge')[0]!)!)!; // the CONSUMER span of Charge's job
      const reserveJob = parentOf(named('Reserve')[0]!)!;
      expect(
        linked(charged).map((c) => c.spanId),
        'linked to the step job that staged it',
      ).to.deep.equal([reserveJob.spanContext().spanId]);
    } finally {
      await Promise.all(app.consumers.map((c) => c.close()));
    }
  });

  it('should link the step that goes on after a wait to the event that ended it', async () => {
    const app = await traced();
    try {
      const { orderId } = await app.start('pending');
      exporter.reset();
      await app.mediator.send(new Settle({ chargeId: `ch-${orderId}`, status: 'succeeded' }), ann);
      await settled(app.container, 10_000);
      const settle = named('Settle')[0]!;
      const ship = named('Ship')[0]!;
      expect(ship.spanContext().traceId, 'the process trace, not the event’s').to.not.equal(
        settle.spanContext().traceId,
      );
      const consumer = parentOf(parentOf(ship)!)!;
      expect(
        linked(consumer).map((c) => c.traceId),
        'linked to the event’s trace',
      ).to.deep.equal([settle.spanContext().traceId]);
    } finally {
      await Promise.all(app.consumers.map((c) => c.close()));
    }
  });

  it('should count processes started and ended by state, and time each step', async () => {
    const app = await traced();
    try {
      await app.start('4242');
      await app.start('decline');
      await reader.forceFlush();
      const points = metricExporter
        .getMetrics()
        .at(-1)!
        .scopeMetrics.flatMap((s) => s.metrics)
        .flatMap((m) => m.dataPoints.map((p) => ({ name: m.descriptor.name, ...p })));
      const of = (name: string) => points.filter((p) => p.name === name);
      expect(of('usecasecore.process.started').map((p) => p.value)).to.deep.equal([2]);
      const ended = of('usecasecore.process.ended').map((p) => [p.attributes['usecasecore.process.state'], p.value]);
      expect(ended).to.have.deep.members([
        ['completed', 1],
        ['compensated', 1],
      ]);
      const steps = of('usecasecore.process.step.duration').map((p) => [
        p.attributes['usecasecore.process.step'],
        p.attributes['usecasecore.process.step.state'],
        (p.value as { count: number }).count,
      ]);
      expect(steps).to.include.deep.members([
        ['Reserve', 'completed', 2],
        ['Charge', 'completed', 1],
        ['Charge', 'failed', 1],
        ['Ship', 'completed', 1],
      ]);
    } finally {
      await Promise.all(app.consumers.map((c) => c.close()));
    }
  });
});
