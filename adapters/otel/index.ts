// OpenTelemetry for usecasecore: a span and metrics per send (`tracing()`), and the trace context carried through
// the outbox to the relay and the consumers (`otelModule()`). Needs the optional peer `@opentelemetry/api`; without a
// registered SDK nothing is recorded.
import { ContainerModule } from 'inversify';
import { TOKENS } from '../../lib/core/tokens.js';
import { OtelTelemetry, type OtelModuleOptions } from './telemetry.js';

export { observeOutboxBacklog } from './backlog.js';
export { extractTraceContext, injectTraceContext } from './propagation.js';
export { SCOPE } from './scope.js';
export { OtelTelemetry, type OtelModuleOptions } from './telemetry.js';
export { tracing, type TracingOptions } from './tracing.js';

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
