// OpenTelemetry for usecasecore, in one place: a span and metrics per send (`tracing()`), and the trace context
// carried through the outbox to the relay and the consumers (`otelModule()`). Needs the optional peer
// `@opentelemetry/api`; without a registered SDK nothing is recorded.
import {
  context,
  createNoopMeter,
  createTraceState,
  metrics,
  propagation,
  ProxyTracerProvider,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  TraceFlags,
  type Context as OtelContext,
  type Counter,
  type Histogram,
  type Meter,
  type MeterProvider,
  type ObservableResult,
  type Span,
  type Tracer,
} from '@opentelemetry/api';
import { ContainerModule } from 'inversify';
import type { AnyResult } from '../../lib/core/context.js';
import { withRules, type Middleware } from '../../lib/core/middleware.js';
import type {
  Delivery,
  Disposition,
  MessageBus,
  Outbox,
  OutboxMessage,
  PublishReport,
  Telemetry,
} from '../../lib/core/ports.js';
import { TOKENS } from '../../lib/core/tokens.js';

/** The instrumentation scope of every span and instrument. */
export const SCOPE = 'usecasecore';

/** Options of `tracing()`. */
export interface TracingOptions {
  /** A tracer other than the global provider's `usecasecore` tracer. */
  readonly tracer?: Tracer;
  /** A meter provider other than the global one. */
  readonly meterProvider?: MeterProvider;
}

interface SendInstruments {
  readonly provider: MeterProvider;
  readonly duration: Histogram;
  readonly replays: Counter;
  /** The provider is the API's no-op one (no SDK): nothing to time or count. */
  readonly idle: boolean;
}

/** The API's no-op meter hands out one shared histogram: an instrument identical to it records nothing. */
const NOOP_HISTOGRAM = createNoopMeter().createHistogram(SCOPE);
const INTERNAL = { kind: SpanKind.INTERNAL };
/** What a ProxyTracerProvider delegates to while no SDK is registered. */
const NOOP_TRACER_PROVIDER = new ProxyTracerProvider().getDelegate();

/** The instruments of sends, made again when the global meter provider changes (the SDK may start after us). */
function sendInstruments(cached: SendInstruments | undefined, provider: MeterProvider): SendInstruments {
  if (cached?.provider === provider) return cached;
  const meter: Meter = provider.getMeter(SCOPE);
  const duration = meter.createHistogram('usecasecore.send.duration', {
    unit: 's',
    description: 'Duration of mediator.send, from the first middleware to the result',
    advice: { explicitBucketBoundaries: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5] },
  });
  return {
    provider,
    duration,
    replays: meter.createCounter('usecasecore.idempotency.replays', {
      unit: '{send}',
      description: 'Sends answered with a stored result (same idempotency key and payload)',
    }),
    idle: duration === NOOP_HISTOGRAM,
  };
}

/**
 * One INTERNAL span per send named after the request type (a nested send's is a child of its parent's), with
 * `usecasecore.request.type`, `.outcome` (`ok`, the failure kind, or `error`), `.failure.code`, `.replayed`,
 * `.attempts` and `.tenant`; an exception is recorded and sets the status to ERROR, a business failure does not. Also
 * records `usecasecore.send.duration` and counts `usecasecore.idempotency.replays`. Put it first in the stack.
 * @example middleware: [tracing(), ...recommendedStack({ rules })]
 */
export function tracing(options: TracingOptions = {}): Middleware {
  const tracer = options.tracer ?? trace.getTracer(SCOPE);
  // With the global tracer and no SDK registered (yet: it may come later), a span would record nothing.
  const global = options.tracer === undefined ? (trace.getTracerProvider() as Partial<ProxyTracerProvider>) : undefined;
  const noSdk = () => global?.getDelegate?.() === NOOP_TRACER_PROVIDER;
  let instruments: SendInstruments | undefined;
  return withRules(
    function tracing(ctx, next) {
      const current = (instruments = sendInstruments(instruments, options.meterProvider ?? metrics.getMeterProvider()));
      if (current.idle && noSdk()) return next(); // the whole cost of tracing() without an SDK
      const parent = context.active();
      const span = tracer.startSpan(ctx.type, INTERNAL, parent);
      // Without an SDK nothing records: hand the send on as it is (no clock reads, no extra async frame).
      if (current.idle && !span.isRecording()) return next();
      return traced(ctx, next, span, parent, current);
    },
    { observer: true },
  );
}

async function traced(
  ctx: Parameters<Middleware>[0],
  next: Parameters<Middleware>[1],
  span: Span,
  parent: OtelContext,
  instruments: SendInstruments,
): Promise<AnyResult> {
  const started = performance.now();
  let outcome = 'error';
  try {
    // Without an SDK the span records nothing: skip making its context active (the cost of a send stays flat).
    const result = span.isRecording() ? await context.with(trace.setSpan(parent, span), next) : await next();
    outcome = outcomeOf(result);
    if (result.replayed) instruments.replays.add(1, { 'usecasecore.request.type': ctx.type });
    if (span.isRecording()) describe(span, result);
    return result;
  } catch (error) {
    span.recordException(error as Error);
    span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error)?.message });
    throw error;
  } finally {
    if (span.isRecording()) {
      span.setAttributes({
        'usecasecore.request.type': ctx.type,
        'usecasecore.outcome': outcome,
        'usecasecore.attempts': Math.max(1, ctx.attempts),
        'usecasecore.tenant': ctx.meta.tenant,
      });
    }
    span.end();
    instruments.duration.record((performance.now() - started) / 1000, {
      'usecasecore.request.type': ctx.type,
      'usecasecore.outcome': outcome,
    });
  }
}

function outcomeOf(result: AnyResult): string {
  return result.ok ? 'ok' : result.failure.kind;
}

function describe(span: Span, result: AnyResult): void {
  span.setAttribute('usecasecore.replayed', result.replayed === true);
  if (!result.ok && result.failure.kind === 'domain')
    span.setAttribute('usecasecore.failure.code', result.failure.code);
}

// ---- W3C trace context in message headers -----------------------------------------------------------------------

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/**
 * Writes the trace context of `from` as W3C `traceparent`, `tracestate` and `baggage` into `headers` (whatever
 * propagators the SDK registered: the outbox row and the AMQP message always carry W3C).
 */
export function injectTraceContext(from: OtelContext, headers: Record<string, string>): void {
  const spanContext = trace.getSpanContext(from);
  if (spanContext && trace.isSpanContextValid(spanContext)) {
    const flags = (spanContext.traceFlags & 0xff).toString(16).padStart(2, '0');
    headers.traceparent = `00-${spanContext.traceId}-${spanContext.spanId}-${flags}`;
    const state = spanContext.traceState?.serialize();
    if (state) headers.tracestate = state;
  }
  const baggage = propagation.getBaggage(from);
  const entries = baggage?.getAllEntries() ?? [];
  if (entries.length > 0) {
    headers.baggage = entries.map(([k, e]) => `${encodeURIComponent(k)}=${encodeURIComponent(e.value)}`).join(',');
  }
}

/** The context `headers` carry (W3C `traceparent`, `tracestate`, `baggage`) on top of `into`; `into` when none. */
export function extractTraceContext(headers: Readonly<Record<string, unknown>>, into = context.active()): OtelContext {
  let extracted = into;
  const parent = typeof headers.traceparent === 'string' ? TRACEPARENT.exec(headers.traceparent) : null;
  if (parent && !/^0+$/.test(parent[1]!) && !/^0+$/.test(parent[2]!)) {
    const state = typeof headers.tracestate === 'string' ? headers.tracestate : undefined;
    extracted = trace.setSpanContext(extracted, {
      traceId: parent[1]!,
      spanId: parent[2]!,
      traceFlags: parseInt(parent[3]!, 16) & TraceFlags.SAMPLED,
      isRemote: true,
      ...(state ? { traceState: createTraceState(state) } : {}),
    });
  }
  if (typeof headers.baggage === 'string' && headers.baggage !== '') {
    const entries = headers.baggage.split(',').flatMap((pair): Array<[string, { value: string }]> => {
      const at = pair.indexOf('=');
      if (at <= 0) return [];
      const value = pair
        .slice(at + 1)
        .split(';')[0]!
        .trim(); // properties after ';' are dropped
      try {
        return [[decodeURIComponent(pair.slice(0, at).trim()), { value: decodeURIComponent(value) }]];
      } catch {
        return []; // a malformed entry is skipped, as the W3C propagator does
      }
    });
    if (entries.length > 0)
      extracted = propagation.setBaggage(extracted, propagation.createBaggage(Object.fromEntries(entries)));
  }
  return extracted;
}

/** Options of `otelModule()`. */
export interface OtelModuleOptions extends TracingOptions {
  /** `messaging.system` of consumer spans (producer spans take the bus's). Default `rabbitmq`. */
  readonly messagingSystem?: string;
  /**
   * A child span `middleware <name>` around each middleware of the stack (nested as the onion is), for where a
   * send's time goes. Default false: a span per middleware per send costs more than the send itself on memory.
   */
  readonly middlewareSpans?: boolean;
}

interface MessagingInstruments {
  readonly provider: MeterProvider;
  readonly lag: Histogram;
  readonly published: Counter;
  readonly failed: Counter;
  readonly processed: Counter;
}

/**
 * The Telemetry port on OpenTelemetry (what `otelModule()` binds): the trace context into staged messages, a
 * PRODUCER span per message the relay publishes, a CONSUMER span per delivery, and their metrics.
 */
export class OtelTelemetry implements Telemetry {
  readonly #tracer: Tracer;
  readonly #options: OtelModuleOptions;
  #instruments: MessagingInstruments | undefined;

  constructor(options: OtelModuleOptions = {}) {
    this.#options = options;
    this.#tracer = options.tracer ?? trace.getTracer(SCOPE);
  }

  inject(headers: Record<string, string>): void {
    injectTraceContext(context.active(), headers);
  }

  /** With `middlewareSpans`, `m` inside a span of its own; otherwise `m` itself. */
  middleware(m: Middleware): Middleware {
    if (!this.#options.middlewareSpans) return m;
    const tracer = this.#tracer;
    const timed = (ctx: Parameters<Middleware>[0], next: Parameters<Middleware>[1]) => {
      const parent = context.active();
      const span = tracer.startSpan(`middleware ${m.name}`, INTERNAL, parent);
      if (!span.isRecording()) return m(ctx, next);
      span.setAttribute('usecasecore.middleware', m.name);
      return context.with(trace.setSpan(parent, span), () => m(ctx, next)).finally(() => span.end());
    };
    Object.defineProperty(timed, 'name', { value: m.name });
    return m.rules ? Object.assign(timed, { rules: m.rules }) : timed;
  }

  /** One PRODUCER span `publish <exchange>` per message, child of the context stored with its row. */
  publishing(batch: readonly OutboxMessage[], bus: MessageBus) {
    const published = batch.map((message) => {
      const to = bus.destinationOf?.(message) ?? { system: 'unknown', name: message.kind, routingKey: message.type };
      const parent = extractTraceContext(message.headers, ROOT_CONTEXT);
      const span = this.#tracer.startSpan(
        `publish ${to.name}`,
        {
          kind: SpanKind.PRODUCER,
          attributes: {
            'messaging.system': to.system,
            'messaging.destination.name': to.name,
            'messaging.rabbitmq.destination.routing_key': to.routingKey,
            'messaging.message.id': message.id,
            'messaging.operation.type': 'send',
            'messaging.operation.name': 'publish',
          },
        },
        parent,
      );
      const headers = { ...message.headers };
      injectTraceContext(trace.setSpan(parent, span), headers); // the consumer's parent is this publish
      return { span, message: { ...message, headers } };
    });
    return {
      batch: published.map((p) => p.message),
      end: (report: PublishReport | undefined, error?: unknown) => {
        const metrics = this.#metrics();
        const sent = new Set(report?.sent);
        const failed = new Map(report?.failed.map((f) => [f.id, f]));
        const confirmedAt = Date.now();
        for (const { span, message } of published) {
          const labels = { 'usecasecore.message.type': message.type };
          const failure = failed.get(message.id);
          if (sent.has(message.id)) {
            metrics.published.add(1, labels);
            metrics.lag.record(Math.max(0, confirmedAt - Date.parse(message.occurredAt)) / 1000, labels);
          } else {
            const why = error ?? failure?.error ?? 'not confirmed by the broker';
            if (error instanceof Error) span.recordException(error);
            span.setStatus({ code: SpanStatusCode.ERROR, message: why instanceof Error ? why.message : String(why) });
            metrics.failed.add(1, { ...labels, 'usecasecore.failure.permanent': failure?.permanent === true });
          }
          span.end();
        }
      },
    };
  }

  /** One CONSUMER span `process <queue>` per delivery, child of the publish; the send it runs is its child. */
  async consuming(delivery: Delivery, queue: string, handle: () => Promise<Disposition>): Promise<Disposition> {
    const { message } = delivery;
    const parent = extractTraceContext(message.headers, ROOT_CONTEXT);
    const span = this.#tracer.startSpan(
      `process ${queue}`,
      {
        kind: SpanKind.CONSUMER,
        attributes: {
          'messaging.system': this.#options.messagingSystem ?? 'rabbitmq',
          'messaging.destination.name': queue,
          'messaging.message.id': message.id,
          'messaging.operation.type': 'process',
          'usecasecore.delivery.attempt': delivery.attempt,
        },
      },
      parent,
    );
    const labels = { 'messaging.destination.name': queue, 'usecasecore.message.type': message.type };
    try {
      const disposition = await context.with(trace.setSpan(parent, span), handle);
      span.setAttribute('usecasecore.disposition', disposition.action);
      if (disposition.action === 'dead')
        span.setStatus({ code: SpanStatusCode.ERROR, message: disposition.reason ?? 'dead-lettered' });
      this.#metrics().processed.add(1, { ...labels, 'usecasecore.disposition': disposition.action });
      return disposition;
    } catch (error) {
      span.recordException(error as Error);
      span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error)?.message });
      this.#metrics().processed.add(1, { ...labels, 'usecasecore.disposition': 'error' });
      throw error;
    } finally {
      span.end();
    }
  }

  #metrics(): MessagingInstruments {
    const provider = this.#options.meterProvider ?? metrics.getMeterProvider();
    if (this.#instruments?.provider === provider) return this.#instruments;
    const meter = provider.getMeter(SCOPE);
    return (this.#instruments = {
      provider,
      lag: meter.createHistogram('usecasecore.outbox.lag', {
        unit: 's',
        description: "From a message's commit to the broker's confirm of its publish",
      }),
      published: meter.createCounter('usecasecore.relay.published', {
        unit: '{message}',
        description: 'Messages the relay published and the broker confirmed',
      }),
      failed: meter.createCounter('usecasecore.relay.failed', {
        unit: '{message}',
        description: 'Messages whose publish failed (permanent: parked at once)',
      }),
      processed: meter.createCounter('usecasecore.consumer.processed', {
        unit: '{delivery}',
        description: 'Deliveries a consumer handled, by disposition: ack, retry, dead (dead-lettered) or error',
      }),
    });
  }
}

/**
 * Reports the outbox's unsent messages as the observable gauge `usecasecore.outbox.backlog` (and the parked ones,
 * attribute `usecasecore.outbox.state`, when the outbox can count them). Returns the unregistration.
 * @example const stop = observeOutboxBacklog(container.get(TOKENS.Outbox));
 */
export function observeOutboxBacklog(
  outbox: Pick<Outbox, 'pending'> & { status?(): Promise<{ readonly parked?: number }> },
  options: { readonly meterProvider?: MeterProvider } = {},
): () => void {
  const meter = (options.meterProvider ?? metrics.getMeterProvider()).getMeter(SCOPE);
  const backlog = meter.createObservableGauge('usecasecore.outbox.backlog', {
    unit: '{message}',
    description: 'Committed messages not yet sent (unsent), and those set aside with their error (parked)',
  });
  const observe = async (result: ObservableResult) => {
    result.observe(await outbox.pending(), { 'usecasecore.outbox.state': 'unsent' });
    const parked = (await outbox.status?.())?.parked;
    if (typeof parked === 'number') result.observe(parked, { 'usecasecore.outbox.state': 'parked' });
  };
  backlog.addCallback(observe);
  return () => backlog.removeCallback(observe);
}

/**
 * Binds the Telemetry port: the trace context active at `ctx.publish` / `ctx.enqueue` is stored with the outbox row,
 * the relay publishes each message in a PRODUCER span and writes W3C headers into it, and consumers process each
 * delivery in a CONSUMER span (the relay that memoryModule() and amqpModule() bind takes the port from the container).
 * @example container.load(otelModule(), knexModule({ connection }), amqpModule({ url }));
 */
export function otelModule(options: OtelModuleOptions = {}): ContainerModule {
  return new ContainerModule(({ bind }) => {
    bind(TOKENS.Telemetry).toConstantValue(new OtelTelemetry(options));
  });
}
