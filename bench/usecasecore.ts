// usecasecore rows: the empty stack, the recommended seven-middleware stack on memory adapters (without and with an
// idempotency key), and that stack with OpenTelemetry in front (without an SDK, and with an SDK that exports
// nowhere).
import 'reflect-metadata';
import { context, createContextKey, ROOT_CONTEXT, trace, type Tracer } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics';
import { BatchSpanProcessor, TracerProvider, type ReadableSpan, type SpanExporter } from '@opentelemetry/sdk-trace';
import { Container, injectable } from 'inversify';
import * as v from 'valibot';
import { MemoryBus, memoryModule, type MemoryAuditStore } from '../adapters/memory/index.js';
import { otelModule, SCOPE, tracing } from '../adapters/otel/index.js';
import {
  Command,
  Event,
  TOKENS,
  createMediator,
  handles,
  type Context,
  type Handler,
  type Mediator,
  type Middleware,
} from '../lib/core/index.js';
import type { OutboxMessage } from '../lib/messaging/index.js';
import { recommendedStack, rule } from '../middleware/index.js';
import { check, type Case } from './harness.js';
import { INPUT, isExpected, trivial, type Reply } from './peers.js';

export class Reserve extends Command(v.object({ productId: v.string(), qty: v.number() }))<Reply['value']> {}

@handles(Reserve)
@injectable()
export class ReserveHandler implements Handler<Reserve> {
  handle(cmd: Reserve) {
    return trivial.handle(cmd);
  }
}

const ACTOR = { id: 'bench-user' };

/**
 * The empty stack. `from()` only wraps untrusted input for validation() to parse: with no validation in the stack
 * the handler sees a request without fields. So the main row constructs the request directly (`new Reserve(input)`,
 * the trusted path, as the peers do with `new XCommand(...)`), and a second row times `Reserve.from(input)`.
 */
export function emptyStackCase(construct: 'new' | 'from'): Case {
  const mediator = createMediator(new Container(), { handlers: [ReserveHandler], middleware: [] });
  const run =
    construct === 'new'
      ? () => mediator.send(new Reserve(INPUT), { actor: ACTOR })
      : () => mediator.send(Reserve.from(INPUT), { actor: ACTOR });
  return {
    id: construct === 'new' ? 'ucc-empty' : 'ucc-empty-from',
    label:
      construct === 'new'
        ? 'usecasecore, empty stack (`new Reserve(input)`)'
        : 'usecasecore, empty stack (`Reserve.from(input)`)',
    run,
    async verify() {
      check(mediator.describe(Reserve).middleware.length === 0, 'empty stack is not empty');
      const result = await run();
      if (construct === 'new') check(isExpected(result), `empty stack returned ${JSON.stringify(result)}`);
      // from() without validation: the handler runs but sees no parsed fields.
      else
        check(
          result.ok && result.value.productId === undefined,
          `empty stack (from) returned ${JSON.stringify(result)}`,
        );
    },
  };
}

interface Full {
  container: Container;
  mediator: Mediator;
}

interface StackOptions {
  /** Put in front of the recommended stack (`tracing()`). */
  readonly front?: readonly Middleware[];
  /** Load `otelModule()` and register the announcing handler the OpenTelemetry rows verify with. */
  readonly otel?: boolean;
}

function fullStack(options: StackOptions = {}): Full {
  const container = new Container();
  container.load(memoryModule());
  if (options.otel) container.load(otelModule());
  const mediator = createMediator(container, {
    handlers: options.otel ? [ReserveHandler, AnnounceHandler] : [ReserveHandler],
    middleware: [
      ...(options.front ?? []),
      ...recommendedStack({
        rules: options.otel ? [rule(Reserve, () => true), rule(Announce, () => true)] : [rule(Reserve, () => true)],
      }),
    ],
  });
  return { container, mediator };
}

const FULL_NAMES = ['validation', 'unitOfWork', 'audit', 'idempotency', 'policy', 'transition', 'publish'];

/** What rows 6, 7 and 8–9 check before they are timed: the stack, one ok audit record per send, validation. */
async function checkFullStack(full: Full, run: () => Promise<unknown>, names: readonly string[]): Promise<void> {
  const { mediator, container } = full;
  const actual = mediator.describe(Reserve).middleware;
  check(actual.join() === names.join(), `unexpected stack ${actual.join()}`);
  const audit = container.get<MemoryAuditStore>(TOKENS.AuditStore);
  const before = (await audit.list()).length;
  const result = await run();
  check(isExpected(result), `full stack returned ${JSON.stringify(result)}`);
  const records = await audit.list();
  check(
    records.length === before + 1 && records.at(-1)!.outcome === 'ok',
    'full stack did not append one ok audit record',
  );
  check(JSON.stringify(records.at(-1)!.payload) === JSON.stringify(INPUT), 'audit payload is not the parsed input');
}

/** Validation runs: a bad body is rejected before the handler. */
async function checkValidation(mediator: Mediator): Promise<void> {
  const bad = await mediator.send(Reserve.from({ productId: 1, qty: 'x' }), { actor: ACTOR });
  check(!bad.ok && bad.failure.kind === 'validation', 'validation did not reject a bad body');
}

/**
 * The recommended stack on memory adapters. The memory adapters keep every audit record and idempotency row, so
 * state grows over the run (tens of MB, kept on purpose: it is what the adapter does). `fresh` rebuilds container
 * + mediator before every batch instead: on Node 20 that makes every promise in the process slower and slower,
 * because each MemoryUnitOfWork enables its own AsyncLocalStorage and Node never drops an enabled one (README).
 */
export function fullStackCase(options: { idempotent: boolean; fresh: boolean }): Case {
  let full = fullStack();
  let keys = 0;
  const run = options.idempotent
    ? () => full.mediator.send(Reserve.from(INPUT), { actor: ACTOR, idempotencyKey: `bench-${++keys}` })
    : () => full.mediator.send(Reserve.from(INPUT), { actor: ACTOR });
  return {
    id: options.idempotent ? 'ucc-full-idem' : 'ucc-full',
    label: options.idempotent
      ? 'usecasecore, 7 middleware, memory, fresh idempotency key'
      : 'usecasecore, 7 middleware, memory, no key',
    run,
    settle: true,
    async verify() {
      await checkFullStack(full, run, FULL_NAMES);
      if (options.idempotent) {
        // The key just used must replay (so the first send claimed and stored a record).
        const replay = await full.mediator.send(Reserve.from(INPUT), {
          actor: ACTOR,
          idempotencyKey: `bench-${keys}`,
        });
        check(replay.ok && replay.replayed === true, 'idempotency key did not replay: no record was stored');
      }
      await checkValidation(full.mediator);
    },
    ...(options.fresh
      ? {
          reset: () => {
            full = fullStack();
          },
        }
      : {}),
  };
}

// ---- OpenTelemetry (issue 10) -------------------------------------------------------------------------------------

/** Published by `Announce` only: the OpenTelemetry rows check the trace headers of a staged message with it. */
export class Reserved extends Event(v.object({ productId: v.string(), qty: v.number() })) {
  static readonly type = 'bench.reserved';
}
export class Announce extends Command(v.object({ productId: v.string(), qty: v.number() }))<Reply['value']> {}

@handles(Announce)
@injectable()
export class AnnounceHandler implements Handler<Announce> {
  handle(cmd: Announce, ctx: Context<Announce>) {
    ctx.publish(new Reserved({ productId: cmd.productId, qty: cmd.qty }));
    return trivial.handle(cmd);
  }
}

/** The SDK's "no-op" exporter: export() drops the spans and reports success at once; it only counts them. */
class CountingSpanExporter implements SpanExporter {
  spans = 0;
  last: ReadableSpan | undefined;
  export(spans: ReadableSpan[], done: Parameters<SpanExporter['export']>[1]): void {
    this.spans += spans.length;
    this.last = spans.at(-1);
    done({ code: 0 }); // ExportResultCode.SUCCESS
  }
  async shutdown(): Promise<void> {}
}

/** True when a context manager is registered globally (without one, `context.with` does not carry values). */
function hasContextManager(): boolean {
  const key = createContextKey('bench.probe');
  return context.with(ROOT_CONTEXT.setValue(key, true), () => context.active().getValue(key) === true);
}

/** True when the global tracer provider is an SDK's (its spans record). */
function hasGlobalSdk(): boolean {
  const probe = trace.getTracer('bench.probe').startSpan('probe');
  probe.end();
  return probe.isRecording();
}

/** Sends `Announce` and returns the message the relay published for it (the staged outbox message). */
async function announced(full: Full): Promise<OutboxMessage> {
  const bus = full.container.get(MemoryBus);
  const seen: OutboxMessage[] = [];
  const unsubscribe = bus.subscribe(Reserved.type, (m) => {
    seen.push(m);
  });
  try {
    const result = await full.mediator.send(Announce.from(INPUT), { actor: ACTOR });
    check(result.ok, `Announce returned ${JSON.stringify(result)}`);
    await bus.idle();
  } finally {
    unsubscribe();
  }
  check(seen.length === 1, `Announce published ${seen.length} messages, expected 1`);
  return seen[0]!;
}

const OTEL_NAMES = ['tracing', ...FULL_NAMES];

/**
 * Row 6 with `tracing()` in front and `otelModule()` loaded, and no SDK: the global tracer and meter providers are
 * the API's no-op ones and no context manager is registered (while this row runs; see `otelSdkCase`).
 */
export function otelApiCase(options: { fresh: boolean }): Case {
  const build = () => fullStack({ front: [tracing()], otel: true });
  let full = build();
  const run = () => full.mediator.send(Reserve.from(INPUT), { actor: ACTOR });
  return {
    id: 'ucc-full-otel-api',
    label: 'row 6 + `tracing()` + `otelModule()`, no SDK (API no-ops)',
    run,
    settle: true,
    async verify() {
      check(!hasGlobalSdk(), 'a global tracer provider is registered: this row must run without an SDK');
      check(!hasContextManager(), 'a global context manager is registered: this row must run without an SDK');
      await checkFullStack(full, run, OTEL_NAMES);
      const message = await announced(full);
      for (const header of ['traceparent', 'tracestate', 'baggage'])
        check(!(header in message.headers), `without an SDK the outbox message got a ${header} header`);
      await checkValidation(full.mediator);
    },
    ...(options.fresh
      ? {
          reset: () => {
            full = build();
          },
        }
      : {}),
  };
}

/**
 * Row 6 with an OpenTelemetry SDK that exports nowhere: a TracerProvider with a BatchSpanProcessor (what a service
 * runs in production) over an exporter that drops every batch, a MeterProvider whose periodic reader never fires
 * during the bench (1 h interval), and an AsyncLocalStorageContextManager. The tracer and meter provider are passed
 * to `tracing()`; nothing is registered as the global tracer or meter provider, so the `api` row stays SDK-free.
 * The context manager is global by nature (`context.with`, `context.active()`): it is registered around this row's
 * own verification and batches only (`enter` / `leave`), so no other row is timed with it.
 */
export function otelSdkCase(options: { fresh: boolean }): Case & {
  /** Sends so far (each records one span) and spans the exporter received, after a flush. */
  spans(): Promise<{ sends: number; exported: number }>;
  close(): Promise<void>;
} {
  const exporter = new CountingSpanExporter();
  const provider = new TracerProvider({ spanProcessors: [new BatchSpanProcessor({ exporter })] });
  const tracer: Tracer = provider.getTracer(SCOPE);
  const metricExporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  const reader = new PeriodicExportingMetricReader({ exporter: metricExporter, exportIntervalMillis: 3_600_000 });
  const meterProvider = new MeterProvider({ readers: [reader] });
  const contextManager = new AsyncLocalStorageContextManager();
  const build = () => fullStack({ front: [tracing({ tracer, meterProvider })], otel: true });
  let full = build();
  let sends = 0; // timed sends (run)
  let others = 0; // sends of the verification that are not `run` (each records a span too)
  const run = () => {
    sends++;
    return full.mediator.send(Reserve.from(INPUT), { actor: ACTOR });
  };
  const durations = async (): Promise<number> => {
    await reader.forceFlush();
    const points = (metricExporter.getMetrics().at(-1)?.scopeMetrics ?? [])
      .flatMap((s) => s.metrics)
      .filter((m) => m.descriptor.name === 'usecasecore.send.duration')
      .flatMap((m) => m.dataPoints.map((p) => p.value as { count: number }));
    metricExporter.reset();
    return points.reduce((n, p) => n + p.count, 0);
  };
  return {
    id: 'ucc-full-otel-sdk',
    label: 'row 6 + `tracing()` + `otelModule()`, SDK with a no-op exporter',
    run,
    settle: true,
    enter() {
      check(context.setGlobalContextManager(contextManager.enable()), 'could not register the context manager');
    },
    leave() {
      context.disable();
    },
    async verify() {
      check(hasContextManager(), 'the context manager is not registered');
      check(!hasGlobalSdk(), 'the SDK must not be the global tracer provider (the api row would record)');
      await provider.forceFlush();
      const spansBefore = exporter.spans;
      const sendsBefore = sends;
      await checkFullStack(full, run, OTEL_NAMES);
      for (let i = 0; i < 9; i++) check(isExpected(await run()), 'send with the SDK failed');
      await provider.forceFlush();
      check(
        exporter.spans - spansBefore === sends - sendsBefore,
        `${sends - sendsBefore} sends exported ${exporter.spans - spansBefore} spans, expected one each`,
      );
      const span = exporter.last!;
      check(
        span.name === 'Reserve' && span.attributes['usecasecore.outcome'] === 'ok',
        `unexpected span ${span.name} ${JSON.stringify(span.attributes)}`,
      );
      check((await durations()) >= sends, 'usecasecore.send.duration did not count every send');
      const message = await announced(full);
      others++;
      await provider.forceFlush();
      const { traceId, spanId } = exporter.last!.spanContext();
      check(
        exporter.last!.name === 'Announce' && message.headers.traceparent === `00-${traceId}-${spanId}-01`,
        `the outbox message's traceparent ${message.headers.traceparent} is not the Announce span's`,
      );
      await checkValidation(full.mediator);
      others++;
    },
    async spans() {
      await provider.forceFlush();
      return { sends: sends + others, exported: exporter.spans };
    },
    ...(options.fresh
      ? {
          reset: () => {
            full = build();
          },
        }
      : {}),
    async close() {
      await Promise.all([provider.shutdown(), meterProvider.shutdown()]);
    },
  };
}
