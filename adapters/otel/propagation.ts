// The W3C trace context (traceparent, tracestate, baggage) in message headers, both ways.
import {
  context,
  createTraceState,
  propagation,
  trace,
  TraceFlags,
  type Context as OtelContext,
} from '@opentelemetry/api';

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
