// tracing(): a span and metrics per send, as the outermost middleware (an observer).
import {
  context,
  createNoopMeter,
  metrics,
  ProxyTracerProvider,
  SpanStatusCode,
  trace,
  type Context as OtelContext,
  type Counter,
  type Histogram,
  type Meter,
  type MeterProvider,
  type Span,
  type Tracer,
} from '@opentelemetry/api';
import { withRules, type Middleware } from '../../lib/core/middleware.js';
import type { AnyResult } from '../../lib/core/result.js';
import { INTERNAL, SCOPE } from './scope.js';

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
    // Only a send with a key replays a stored result: an inbox duplicate is replayed too, but is no idempotency replay.
    if (result.replayed && ctx.meta.idempotencyKey !== undefined)
      instruments.replays.add(1, { 'usecasecore.request.type': ctx.type });
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
