// OpenTelemetry for usecasecore, in one place: a span and metrics per send (`tracing()`), and the trace context
// carried through the outbox to the relay and the consumers (`otelModule()`). Needs the optional peer
// `@opentelemetry/api`; without a registered SDK nothing is recorded.
import {
  context,
  createTraceState,
  metrics,
  propagation,
  SpanKind,
  SpanStatusCode,
  trace,
  TraceFlags,
  type Context as OtelContext,
  type Counter,
  type Histogram,
  type Meter,
  type MeterProvider,
  type Span,
  type Tracer,
} from '@opentelemetry/api';
import { ContainerModule } from 'inversify';
import type { AnyResult } from '../../lib/context.js';
import { withRules, type Middleware } from '../../lib/middleware.js';
import type { Telemetry } from '../../lib/ports.js';
import { TOKENS } from '../../lib/tokens.js';

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
}

/** The instruments of sends, made again when the global meter provider changes (the SDK may start after us). */
function sendInstruments(cached: SendInstruments | undefined, provider: MeterProvider): SendInstruments {
  if (cached?.provider === provider) return cached;
  const meter: Meter = provider.getMeter(SCOPE);
  return {
    provider,
    duration: meter.createHistogram('usecasecore.send.duration', {
      unit: 's',
      description: 'Duration of mediator.send, from the first middleware to the result',
      advice: { explicitBucketBoundaries: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5] },
    }),
    replays: meter.createCounter('usecasecore.idempotency.replays', {
      unit: '{send}',
      description: 'Sends answered with a stored result (same idempotency key and payload)',
    }),
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
  let instruments: SendInstruments | undefined;
  return withRules(
    async function tracing(ctx, next) {
      instruments = sendInstruments(instruments, options.meterProvider ?? metrics.getMeterProvider());
      const parent = context.active();
      const span = tracer.startSpan(ctx.type, { kind: SpanKind.INTERNAL }, parent);
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
    },
    { observer: true },
  );
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

/** The Telemetry port on OpenTelemetry: what `otelModule()` binds. */
export class OtelTelemetry implements Telemetry {
  inject(headers: Record<string, string>): void {
    injectTraceContext(context.active(), headers);
  }
}

/**
 * Binds the Telemetry port, so the trace context active at `ctx.publish` / `ctx.enqueue` is stored with the
 * outbox row (and continues in the relay and the consumers).
 * @example container.load(knexModule({ connection }), amqpModule({ url }), otelModule());
 */
export function otelModule(): ContainerModule {
  return new ContainerModule(({ bind }) => {
    bind(TOKENS.Telemetry).toConstantValue(new OtelTelemetry());
  });
}
