// OpenTelemetry for `npm start`: the trace context of each request is honoured always (a context manager), and spans
// are exported when OTEL_TRACES_EXPORTER asks for it. The SDK packages are dev dependencies of this repository (the
// sample's), never dependencies of the library, which uses the API only.
import { context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { ConsoleSpanExporter, SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';

/** What `startTelemetry` set up. */
export interface SampleTelemetry {
  /** One line for the start-up output: where spans go. */
  readonly description: string;
  /** Exports the spans still buffered and stops the provider (a no-op when nothing is exported). */
  shutdown(): Promise<void>;
}

/**
 * Registers an AsyncLocalStorage context manager (so an incoming `traceparent` reaches the send and the outbox row
 * even when no span is exported) and, for these variables, a TracerProvider:
 * - `OTEL_TRACES_EXPORTER=console`: spans are printed on stdout (ConsoleSpanExporter, one by one as they end).
 * - `otlp` there, or `OTEL_EXPORTER_OTLP_ENDPOINT` / `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`: not supported by this
 *   sample (no OTLP exporter package is installed); it says so and exports nothing over OTLP.
 * Unset (or `none`): no provider; the library records nothing. `OTEL_SDK_DISABLED=true` turns everything off.
 * @example const telemetry = startTelemetry(process.env); console.log(telemetry.description);
 */
export function startTelemetry(
  env: Readonly<Record<string, string | undefined>>,
  log: (line: string) => void = console.log,
): SampleTelemetry {
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true')
    return { description: 'tracing: off (OTEL_SDK_DISABLED)', shutdown: async () => undefined };
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  const exporters = (env.OTEL_TRACES_EXPORTER ?? '')
    .split(',')
    .map((name) => name.trim().toLowerCase())
    .filter((name) => name !== '' && name !== 'none');
  const endpoint = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || env.OTEL_EXPORTER_OTLP_ENDPOINT;
  if (exporters.includes('otlp') || endpoint)
    log(
      `tracing: OTLP export${endpoint ? ` to ${endpoint}` : ''} is not supported by the sample ` +
        '(no OTLP exporter package is installed); set OTEL_TRACES_EXPORTER=console to print spans',
    );
  const unknown = exporters.filter((name) => name !== 'console' && name !== 'otlp');
  if (unknown.length > 0) log(`tracing: OTEL_TRACES_EXPORTER ${unknown.join(', ')} is not supported; ignored`);
  if (!exporters.includes('console'))
    return {
      description:
        'tracing: incoming traceparent honoured; spans not exported (OTEL_TRACES_EXPORTER=console to print them)',
      shutdown: async () => undefined,
    };
  const provider = new TracerProvider({
    spanProcessors: [new SimpleSpanProcessor({ exporter: new ConsoleSpanExporter() })],
  });
  trace.setGlobalTracerProvider(provider);
  return {
    description: 'tracing: spans printed on stdout (OTEL_TRACES_EXPORTER=console)',
    shutdown: () => provider.shutdown(),
  };
}
