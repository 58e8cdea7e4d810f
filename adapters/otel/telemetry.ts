// The Telemetry port on OpenTelemetry: trace context into staged messages, a span per middleware when asked, a
// PRODUCER span per published message and a CONSUMER span per delivery, with their metrics.
import {
  context,
  metrics,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Counter,
  type Histogram,
  type Link,
  type MeterProvider,
  type Tracer,
} from '@opentelemetry/api';
import type { OutboxMessage, ProcessMovement } from '../../lib/core/ports.js';
import { LINK_HEADER } from '../../lib/core/staging.js';
import type {
  Delivery,
  Disposition,
  MessageBus,
  MessagingTelemetry,
  PublishReport,
} from '../../lib/messaging/ports.js';
import { extractTraceContext, injectTraceContext } from './propagation.js';
import { INTERNAL, SCOPE } from './scope.js';
import type { TracingOptions } from './tracing.js';

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
  readonly processes: { readonly started: Counter; readonly ended: Counter; readonly step: Histogram };
}

/**
 * The Telemetry port on OpenTelemetry (what `otelModule()` binds): the trace context into staged messages, a
 * PRODUCER span per message the relay publishes, a CONSUMER span per delivery, and their metrics.
 */
export class OtelTelemetry implements MessagingTelemetry {
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

  /** With `middlewareSpans`, each middleware runs inside a span of its own (`middleware <name>`); else as it is. */
  middleware(name: string): (<T>(run: () => Promise<T>) => Promise<T>) | undefined {
    if (!this.#options.middlewareSpans) return undefined;
    const tracer = this.#tracer;
    return (run) => {
      const parent = context.active();
      const span = tracer.startSpan(`middleware ${name}`, INTERNAL, parent);
      if (!span.isRecording()) return run();
      span.setAttribute('usecasecore.middleware', name);
      return context.with(trace.setSpan(parent, span), run).finally(() => span.end());
    };
  }

  /** A span `<Type> process`, child of the send that starts it, ended at once: its context is what the steps join. */
  processSpan(type: string): Record<string, string> {
    const parent = context.active();
    const span = this.#tracer.startSpan(
      `${type} process`,
      { ...INTERNAL, attributes: { 'usecasecore.process.type': type } },
      parent,
    );
    const headers: Record<string, string> = {};
    injectTraceContext(trace.setSpan(parent, span), headers);
    span.end();
    return headers;
  }

  /** Counts processes started and ended (by state), and records how long each step took. */
  processMoved(moved: ProcessMovement): void {
    const { processes } = this.#metrics();
    const labels = { 'usecasecore.process.type': moved.type };
    if (moved.kind === 'started') processes.started.add(1, labels);
    else if (moved.kind === 'ended') processes.ended.add(1, { ...labels, 'usecasecore.process.state': moved.state });
    else
      processes.step.record(moved.seconds, {
        ...labels,
        'usecasecore.process.step': moved.step,
        'usecasecore.process.step.state': moved.state,
      });
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
        links: linksOf(message.headers),
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
      processes: {
        started: meter.createCounter('usecasecore.process.started', {
          unit: '{process}',
          description: 'Processes started',
        }),
        ended: meter.createCounter('usecasecore.process.ended', {
          unit: '{process}',
          description: 'Processes ended, by state: completed, compensated or failed',
        }),
        step: meter.createHistogram('usecasecore.process.step.duration', {
          unit: 's',
          description: "From a step's first attempt to its settling (a wait's: until its event came)",
        }),
      },
    });
  }
}

/** The link a job sent under another trace carries (`usecasecore-link`): the context that staged it. */
function linksOf(headers: Readonly<Record<string, unknown>>): Link[] {
  const link = headers[LINK_HEADER];
  if (typeof link !== 'string') return [];
  const linked = trace.getSpanContext(extractTraceContext({ traceparent: link }, ROOT_CONTEXT));
  return linked ? [{ context: linked }] : [];
}
