// OpenTelemetry: one span per send with its outcome, nested sends as children, the trace context stored with the
// outbox row, metrics per send — and nothing recorded or added without an SDK.
import 'reflect-metadata';
import { context, metrics, propagation, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics';
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider, type ReadableSpan } from '@opentelemetry/sdk-trace';
import { Container, injectable } from 'inversify';
import * as v from 'valibot';
import { MemoryBus, memoryModule } from '../../../adapters/memory/index.js';
import {
  extractTraceContext,
  injectTraceContext,
  observeOutboxBacklog,
  otelModule,
  tracing,
} from '../../../adapters/otel/index.js';
import { settled } from '../../../lib/testing/index.js';
import {
  Command,
  createMediator,
  TOKENS,
  failure,
  type Failure,
  type FailureKind,
  handles,
  ok,
  type Context,
  type Middleware,
} from '../../../lib/core/index.js';
import { consume, type OutboxMessage } from '../../../lib/messaging/index.js';
import { recommendedStack, rule } from '../../../middleware/index.js';
import {
  ACCOUNT_HANDLERS,
  ACCOUNTS,
  Accounts,
  Deposit,
  Deposited,
  Explode,
  Withdraw,
  alice,
  expect,
} from '../../support/helpers.js';

@handles(Deposited)
@injectable()
class LedgerHandler {
  handle() {
    return ok(undefined);
  }
}

class Transfer extends Command(v.object({ from: v.string(), to: v.string(), amount: v.number() }))<
  { moved: number },
  'insufficient_funds'
> {}

@handles(Transfer)
@injectable()
class TransferHandler {
  async handle(cmd: Transfer, ctx: Context<Transfer>) {
    const taken = await ctx.send(Withdraw.from({ account: cmd.from, amount: cmd.amount }));
    if (!taken.ok) return taken;
    await ctx.send(Deposit.from({ account: cmd.to, amount: cmd.amount }));
    return ok({ moved: cmd.amount });
  }
}

/** Resolves to the failure of the kind it is given: every built-in kind through one handler. */
class Fails extends Command(v.object({ kind: v.string() }))<void> {}
@handles(Fails)
@injectable()
class FailsHandler {
  handle(cmd: Fails) {
    const kind = cmd.kind as Exclude<FailureKind, 'domain'>;
    const message = `a ${kind} failure`;
    return failure(
      kind === 'validation'
        ? { kind, message, issues: [] }
        : kind === 'invalid_transition'
          ? { kind, message, from: 'placed', to: 'shipped', allowed: ['pay'] }
          : ({ kind, message } as Exclude<Failure<never>, { kind: 'domain' | 'validation' | 'invalid_transition' }>),
    );
  }
}

const rules = [
  rule(Fails, () => true),
  rule(Deposit, () => true),
  rule(Withdraw, () => true),
  rule(Explode, () => true),
  rule(Transfer, () => true),
];

function wired(middleware: Middleware[], withTelemetry = true) {
  const container = new Container();
  container.load(memoryModule());
  if (withTelemetry) container.load(otelModule());
  container.bind(ACCOUNTS).to(Accounts).inSingletonScope();
  const mediator = createMediator(container, {
    handlers: [...ACCOUNT_HANDLERS, TransferHandler, FailsHandler],
    middleware,
  });
  const published: OutboxMessage[] = [];
  container.get(MemoryBus).subscribe('account.deposited', (m) => published.push(m));
  return { mediator, published, bus: container.get(MemoryBus) };
}

describe('OpenTelemetry (usecasecore/otel)', () => {
  const exporter = new InMemorySpanExporter();
  const provider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] });
  const meterProvider = new MeterProvider();
  const contextManager = new AsyncLocalStorageContextManager();
  const tracer = provider.getTracer('usecasecore');
  const stack = () => [tracing({ tracer, meterProvider }), ...recommendedStack({ rules })];
  const spans = () => exporter.getFinishedSpans();
  const only = (name: string): ReadableSpan => {
    const found = spans().filter((s) => s.name === name);
    expect(found, `spans named ${name}`).to.have.length(1);
    return found[0]!;
  };

  before(() => context.setGlobalContextManager(contextManager.enable()));
  after(async () => {
    context.disable();
    await Promise.all([provider.shutdown(), meterProvider.shutdown()]);
  });
  beforeEach(() => exporter.reset());

  it('records one INTERNAL span per send, named after the type, with its outcome and attributes', async () => {
    const { mediator } = wired(stack());
    const result = await mediator.send(Deposit.from({ account: 'a', amount: 5 }), { ...alice, tenant: 'acme' });
    expect(result.ok).to.equal(true);
    const span = only('Deposit');
    expect(span.kind).to.equal(SpanKind.INTERNAL);
    expect(span.status.code).to.equal(SpanStatusCode.UNSET);
    expect(span.attributes).to.deep.include({
      'usecasecore.request.type': 'Deposit',
      'usecasecore.outcome': 'ok',
      'usecasecore.replayed': false,
      'usecasecore.attempts': 1,
      'usecasecore.tenant': 'acme',
    });
    expect(span.attributes).not.to.have.property('usecasecore.failure.code');
  });

  it('marks a business failure by its kind and code without an ERROR status', async () => {
    const { mediator } = wired(stack());
    const denied = await mediator.send(Withdraw.from({ account: 'empty', amount: 5 }), alice);
    expect(denied.ok).to.equal(false);
    const invalid = await mediator.send(Deposit.from({ account: 'a', amount: 'lots' }), alice);
    expect(invalid.ok).to.equal(false);
    const [domain, validation] = spans();
    expect(domain!.attributes).to.deep.include({
      'usecasecore.outcome': 'domain',
      'usecasecore.failure.code': 'insufficient_funds',
    });
    expect(validation!.attributes).to.deep.include({ 'usecasecore.outcome': 'validation' });
    for (const span of [domain!, validation!]) expect(span.status.code).to.equal(SpanStatusCode.UNSET);
  });

  it('marks every failure kind by its name, none with an ERROR status', async () => {
    const { mediator } = wired(stack());
    const kinds = ['validation', 'forbidden', 'not_found', 'invalid_transition', 'conflict', 'idempotency_mismatch'];
    for (const kind of [...kinds, 'in_progress', 'unavailable']) {
      const result = await mediator.send(Fails.from({ kind }), alice);
      expect(!result.ok && result.failure.kind).to.equal(kind);
    }
    const sent = spans().filter((s) => s.name === 'Fails');
    expect(sent.map((s) => s.attributes['usecasecore.outcome'])).to.deep.equal([
      ...kinds,
      'in_progress',
      'unavailable',
    ]);
    for (const span of sent) expect(span.status.code).to.equal(SpanStatusCode.UNSET);
  });

  it('records an exception and sets the status to ERROR', async () => {
    const { mediator } = wired(stack());
    await expect(mediator.send(Explode.from({ account: 'x' }), alice)).to.be.rejectedWith('boom');
    const span = only('Explode');
    expect(span.status).to.deep.include({ code: SpanStatusCode.ERROR, message: 'boom' });
    expect(span.attributes['usecasecore.outcome']).to.equal('error');
    expect(span.events.map((e) => e.name)).to.deep.equal(['exception']);
  });

  it('makes nested sends child spans of their parent, in one trace', async () => {
    const { mediator } = wired(stack());
    await mediator.send(Deposit.from({ account: 'from', amount: 10 }), alice);
    exporter.reset();
    const moved = await mediator.send(Transfer.from({ from: 'from', to: 'to', amount: 4 }), alice);
    expect(moved.ok).to.equal(true);
    const parent = only('Transfer');
    for (const name of ['Withdraw', 'Deposit']) {
      const child = only(name);
      expect(child.spanContext().traceId).to.equal(parent.spanContext().traceId);
      expect(child.parentSpanContext?.spanId, `${name}'s parent`).to.equal(parent.spanContext().spanId);
    }
  });

  it('continues the caller’s trace (e.g. the HTTP server span) and marks a replay', async () => {
    const { mediator } = wired(stack());
    const server = tracer.startSpan('POST /deposits', { kind: SpanKind.SERVER });
    await context.with(trace.setSpan(context.active(), server), async () => {
      for (let i = 0; i < 2; i++)
        await mediator.send(Deposit.from({ account: 'r', amount: 1 }), { ...alice, idempotencyKey: 'k1' });
    });
    server.end();
    const sends = spans().filter((s) => s.name === 'Deposit');
    expect(sends.map((s) => s.attributes['usecasecore.replayed'])).to.deep.equal([false, true]);
    for (const send of sends) expect(send.parentSpanContext?.spanId).to.equal(server.spanContext().spanId);
  });

  it('stores the trace context active at ctx.publish, with baggage, in the message headers', async () => {
    const { mediator, published, bus } = wired(stack());
    const baggage = propagation.createBaggage({ 'customer.tier': { value: 'gold & co' } });
    await context.with(propagation.setBaggage(context.active(), baggage), () =>
      mediator.send(Deposit.from({ account: 'b', amount: 2 }), alice),
    );
    await bus.idle();
    expect(published).to.have.length(1);
    const send = only('Deposit');
    const { traceId, spanId } = send.spanContext();
    expect(published[0]!.headers).to.include({
      traceparent: `00-${traceId}-${spanId}-01`,
      baggage: 'customer.tier=gold%20%26%20co',
    });
    const restored = extractTraceContext(published[0]!.headers, context.active());
    expect(trace.getSpanContext(restored)).to.deep.include({ traceId, spanId, isRemote: true });
    expect(propagation.getBaggage(restored)?.getEntry('customer.tier')?.value).to.equal('gold & co');
  });

  it('round-trips tracestate and ignores a malformed or all-zero traceparent', () => {
    const headers: Record<string, string> = {};
    const spanContext = { traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', traceFlags: 1 };
    const withState = trace.setSpanContext(context.active(), {
      ...spanContext,
      traceState: extractTraceStateOf('vendor=a,other=b'),
    });
    injectTraceContext(withState, headers);
    expect(headers).to.deep.equal({
      traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
      tracestate: 'vendor=a,other=b',
    });
    for (const bad of ['garbage', '00-00000000000000000000000000000000-b7ad6b7169203331-01', '00-0af7-b7-01']) {
      expect(trace.getSpanContext(extractTraceContext({ traceparent: bad }, context.active()))).to.equal(undefined);
    }
  });

  it('measures every send in usecasecore.send.duration by type and outcome, and counts idempotency replays only', async () => {
    // A meter of this case's own, so the counts are exactly this workload's.
    const metricExporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
    const reader = new PeriodicExportingMetricReader({ exporter: metricExporter, exportIntervalMillis: 3_600_000 });
    const meterProvider = new MeterProvider({ readers: [reader] });
    const { mediator } = wired([tracing({ tracer, meterProvider }), ...recommendedStack({ rules, inbox: true })]);
    for (let i = 0; i < 3; i++) await mediator.send(Deposit.from({ account: 'm', amount: 1 }), alice);
    await mediator.send(Withdraw.from({ account: 'none', amount: 1 }), alice);
    for (let i = 0; i < 2; i++)
      await mediator.send(Deposit.from({ account: 'm', amount: 1 }), { ...alice, idempotencyKey: 'm1' });
    // A delivery and its duplicate: the inbox replays the second, which is no idempotency replay.
    const delivered = { ...alice, message: { id: 'message-1', consumer: 'spec.ledger' } };
    for (let i = 0; i < 2; i++) {
      const sent = await mediator.send(Deposit.from({ account: 'm', amount: 1 }), delivered);
      expect(sent.replayed === true, `delivery ${i + 1} replayed`).to.equal(i === 1);
    }
    await reader.forceFlush();
    const points = metricExporter
      .getMetrics()
      .at(-1)!
      .scopeMetrics.flatMap((s) => s.metrics)
      .flatMap((m) => m.dataPoints.map((p) => ({ name: m.descriptor.name, unit: m.descriptor.unit, ...p })));
    const count = (name: string, attributes: Record<string, string>) =>
      points
        .filter((p) => p.name === name && Object.entries(attributes).every(([k, val]) => p.attributes[k] === val))
        .reduce((n, p) => n + (typeof p.value === 'number' ? p.value : (p.value as { count: number }).count), 0);
    const ok = { 'usecasecore.request.type': 'Deposit', 'usecasecore.outcome': 'ok' };
    expect(count('usecasecore.send.duration', ok)).to.equal(7);
    expect(
      count('usecasecore.send.duration', { 'usecasecore.request.type': 'Withdraw', 'usecasecore.outcome': 'domain' }),
    ).to.equal(1);
    expect(
      count('usecasecore.idempotency.replays', { 'usecasecore.request.type': 'Deposit' }),
      'the key replayed once; the inbox duplicate is not counted',
    ).to.equal(1);
    expect(points.find((p) => p.name === 'usecasecore.send.duration')?.unit).to.equal('s');
    await meterProvider.shutdown();
  });

  it('continues one trace from the send through the relay’s publish to the consumer’s send, with metrics', async () => {
    const metricExporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
    const reader = new PeriodicExportingMetricReader({ exporter: metricExporter, exportIntervalMillis: 3_600_000 });
    const meters = new MeterProvider({ readers: [reader] });
    const container = new Container();
    container.load(
      memoryModule(),
      otelModule({ tracer, meterProvider: meters, messagingSystem: 'usecasecore.memory' }),
    );
    container.bind(ACCOUNTS).to(Accounts).inSingletonScope();
    const mediator = createMediator(container, {
      handlers: [...ACCOUNT_HANDLERS, LedgerHandler],
      middleware: [
        tracing({ tracer, meterProvider: meters }),
        ...recommendedStack({ rules: [...rules, rule(Deposited, () => true)], inbox: true }),
      ],
    });
    await consume(mediator, container.get(MemoryBus), 'ledger', [Deposited]);
    const stopBacklog = observeOutboxBacklog(container.get(TOKENS.Outbox), { meterProvider: meters });

    const server = tracer.startSpan('POST /deposits', { kind: SpanKind.SERVER });
    await context.with(trace.setSpan(context.active(), server), () =>
      mediator.send(Deposit.from({ account: 't', amount: 7 }), alice),
    );
    server.end();
    await settled(container);

    const send = only('Deposit');
    const publish = only('publish memory.events');
    const process = only('process ledger');
    const handled = only('account.deposited'); // named after the request type: the event's static type
    const traceId = server.spanContext().traceId;
    for (const span of [send, publish, process, handled]) expect(span.spanContext().traceId).to.equal(traceId);
    expect(send.parentSpanContext?.spanId).to.equal(server.spanContext().spanId);
    expect(publish.parentSpanContext?.spanId, 'publish ← the send that staged it').to.equal(send.spanContext().spanId);
    expect(process.parentSpanContext?.spanId, 'process ← the publish').to.equal(publish.spanContext().spanId);
    expect(handled.parentSpanContext?.spanId, "the consumer's send ← process").to.equal(process.spanContext().spanId);
    expect(publish.kind).to.equal(SpanKind.PRODUCER);
    expect(publish.attributes).to.deep.include({
      'messaging.system': 'usecasecore.memory',
      'messaging.destination.name': 'memory.events',
      'messaging.rabbitmq.destination.routing_key': 'account.deposited',
      'messaging.operation.type': 'send',
    });
    expect(publish.attributes['messaging.message.id']).to.be.a('string');
    expect(process.kind).to.equal(SpanKind.CONSUMER);
    expect(process.attributes).to.deep.include({
      'messaging.destination.name': 'ledger',
      'messaging.operation.type': 'process',
      'usecasecore.delivery.attempt': 1,
      'usecasecore.disposition': 'ack',
      'messaging.message.id': publish.attributes['messaging.message.id'],
    });

    await reader.forceFlush();
    const points = metricExporter
      .getMetrics()
      .at(-1)!
      .scopeMetrics.flatMap((s) => s.metrics)
      .flatMap((m) => m.dataPoints.map((p) => ({ name: m.descriptor.name, ...p })));
    const total = (name: string) =>
      points
        .filter((p) => p.name === name)
        .reduce((n, p) => n + (typeof p.value === 'number' ? p.value : (p.value as { count: number }).count), 0);
    expect(total('usecasecore.relay.published')).to.equal(1);
    expect(total('usecasecore.outbox.lag'), 'one lag sample').to.equal(1);
    expect(total('usecasecore.consumer.processed')).to.equal(1);
    expect(points.find((p) => p.name === 'usecasecore.consumer.processed')?.attributes).to.include({
      'usecasecore.disposition': 'ack',
    });
    expect(points.filter((p) => p.name === 'usecasecore.outbox.backlog').map((p) => p.value)).to.deep.equal([0]);
    stopBacklog();
    await meters.shutdown();
  });

  it('records nothing and adds no header without an SDK (the global providers are the no-op ones)', async () => {
    expect(trace.getTracerProvider().getTracer('x').startSpan('probe').isRecording()).to.equal(false);
    expect(metrics.getMeterProvider()).to.be.an('object');
    const { mediator, published, bus } = wired([tracing(), ...recommendedStack({ rules })]);
    const result = await mediator.send(Deposit.from({ account: 'n', amount: 1 }), alice);
    expect(result.ok).to.equal(true);
    await bus.idle();
    expect(spans()).to.deep.equal([]);
    expect(published[0]!.headers).not.to.have.any.keys('traceparent', 'tracestate', 'baggage');
  });

  it('adds no trace header when no Telemetry port is bound, even inside a span', async () => {
    const { mediator, published, bus } = wired(stack(), false);
    await mediator.send(Deposit.from({ account: 'p', amount: 1 }), alice);
    await bus.idle();
    expect(only('Deposit').attributes['usecasecore.outcome']).to.equal('ok');
    expect(published[0]!.headers).not.to.have.property('traceparent');
  });

  it('nests a span per middleware, as the onion runs, with middlewareSpans (and none without)', async () => {
    const container = new Container();
    container.load(memoryModule(), otelModule({ tracer, middlewareSpans: true }));
    container.bind(ACCOUNTS).to(Accounts).inSingletonScope();
    const mediator = createMediator(container, { handlers: ACCOUNT_HANDLERS, middleware: stack() });
    expect((await mediator.send(Deposit.from({ account: 'ms', amount: 1 }), alice)).ok).to.equal(true);
    const byId = new Map(spans().map((s) => [s.spanContext().spanId, s]));
    const chain: string[] = [];
    for (let span = only('middleware publish'); span; span = byId.get(span.parentSpanContext?.spanId ?? '')!)
      chain.unshift(span.name);
    expect(chain).to.deep.equal([
      'Deposit',
      'middleware validation',
      'middleware unitOfWork',
      'middleware audit',
      'middleware idempotency',
      'middleware policy',
      'middleware transition',
      'middleware publish',
    ]);
    expect(only('middleware audit').attributes).to.include({ 'usecasecore.middleware': 'audit' });
    exporter.reset();
    const { mediator: plain } = wired(stack());
    await plain.send(Deposit.from({ account: 'ms', amount: 1 }), alice);
    expect(spans().map((s) => s.name)).to.deep.equal(['Deposit']);
  });

  it('must wrap the whole stack: in front of validation, never after it', () => {
    expect(() => wired([tracing({ tracer, meterProvider }), ...recommendedStack({ rules })])).not.to.throw();
    expect(() => wired([...recommendedStack({ rules }), tracing({ tracer })])).to.throw(
      /tracing observes the whole send — move it to the front/,
    );
  });
});

/** A TraceState from its header text, through the API's own parser. */
function extractTraceStateOf(header: string) {
  return trace.getSpanContext(
    extractTraceContext({ traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', tracestate: header }),
  )!.traceState!;
}
