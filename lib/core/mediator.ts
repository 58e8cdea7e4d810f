// createMediator: checks and composes every request type's stack once, then routes each send to its handler.
import { randomUUID } from 'node:crypto';
import type { Container } from 'inversify';
import { Context, type AnyResult, type Meta, type SendOptions } from './context.js';
import { UseCaseError } from './errors.js';
import { handledBy, subscribedTo, type Handler, type HandlerClass } from './handler.js';
import type { Middleware, MiddlewareClass } from './middleware.js';
import { build, checkStack, resolveMiddleware } from './stack.js';
import { stepsOf } from './flow.js';
import { guarded, isAsyncIterable, streamStack } from './stream.js';
import { loggerOf } from './logger.js';
import type { Ports } from './ports.js';
import { typeOf, type AnyRequest, type FailureOf, type Request, type RequestClass, type ResultOf } from './request.js';
import type { Result } from './result.js';
import { TOKENS } from './tokens.js';

/** What `createMediator` needs: the handler classes and the ordered middleware stack. */
export interface MediatorOptions {
  readonly handlers: readonly HandlerClass[];
  readonly middleware?: ReadonlyArray<Middleware | MiddlewareClass>;
}

/** Sends requests through their stack to their handler. */
export interface Mediator {
  /**
   * @example const result = await mediator.send(MoveInventory.from(body), { actor, idempotencyKey });
   */
  send<C extends AnyRequest>(request: C, options?: SendOptions): Promise<Result<ResultOf<C>, FailureOf<C>>>;
  /**
   * Opens a streamed query — its handler returns `ok(asyncIterable)` — through the stream stack (validation, unit of
   * work, audit of the opening, policy; no idempotency), and resolves to the items to pull with `for await`, or the
   * failure. Stopping early (`break`, `options.signal`) closes the source.
   * @example
   * const opened = await mediator.stream(ExportAudit.from(query), { actor, signal });
   * if (opened.ok) for await (const record of opened.value) res.write(`${JSON.stringify(record)}\n`);
   */
  stream<C extends AnyRequest & Request<AsyncIterable<unknown>, any>>(
    request: C,
    options?: SendOptions,
  ): Promise<Result<ResultOf<C>, FailureOf<C>>>;
  /** The effective stack of a request type, outermost first, then its handler. */
  describe(type: RequestClass): {
    readonly middleware: readonly string[];
    readonly handler: string;
    /** A flow's steps, in order. */
    readonly steps?: readonly string[];
    /** An event's subscribers (@on), in registration order. */
    readonly subscribers?: readonly string[];
  };
  /** Every event subscriber (@on) this mediator serves: what `subscribe()` starts a queue for. */
  subscriptions(): ReadonlyArray<{ readonly event: RequestClass; readonly handler: HandlerClass }>;
  /** The ports this mediator resolved. */
  readonly ports: Ports;
}

// Request ids: a random per-process prefix and a counter — unique across processes, and ~10x cheaper than a UUID.
const PROCESS_ID = randomUUID().slice(0, 8);
let requests = 0;
function nextRequestId(): string {
  return `${PROCESS_ID}-${(++requests).toString(36)}`;
}

interface Route {
  readonly handler: HandlerClass;
  readonly names: readonly string[];
  readonly run: (ctx: Context) => Promise<AnyResult>;
  /** The stream stack's composition, made on the first `stream()` of the type. */
  streamed?: (ctx: Context) => Promise<AnyResult>;
  readonly resolve: () => Handler<AnyRequest>;
}

const PORT_TOKENS = {
  unitOfWork: TOKENS.UnitOfWork,
  idempotency: TOKENS.IdempotencyStore,
  audit: TOKENS.AuditStore,
  outbox: TOKENS.Outbox,
  inbox: TOKENS.Inbox,
  relay: TOKENS.Relay,
  jobs: TOKENS.JobStore,
  source: TOKENS.MessageSource,
  telemetry: TOKENS.Telemetry,
} as const;

/**
 * Builds a mediator. Throws `UseCaseError` when a handler is missing its `@handles`, two handle one type, a stack
 * breaks an ordering rule or a port a middleware needs is not bound.
 * @example
 * const mediator = createMediator(container, { handlers: [MoveInventoryHandler], middleware: recommendedStack() });
 */
export function createMediator(container: Container, options: MediatorOptions): Mediator {
  const ports: Ports = {
    clock: container.get(TOKENS.Clock, { optional: true }) ?? Date,
    logger: loggerOf(container),
    ...Object.fromEntries(
      Object.entries(PORT_TOKENS).map(([name, token]) => [name, container.get(token, { optional: true })]),
    ),
  };
  const telemetry = ports.telemetry;
  // A telemetry port may time each middleware (decided here, once: nothing is added to a send otherwise).
  const observed = (m: Middleware) => (m.rules?.observer ? m : (telemetry?.middleware?.(m) ?? m));
  const stack = (options.middleware ?? []).map((m) => observed(resolveMiddleware(container, m)));
  const routes = new Map<RequestClass, Route>();
  /** Event subscribers (@on), by event type and class. */
  const subscribers = new Map<RequestClass, Map<HandlerClass, Route>>();
  const routeOf = (type: RequestClass, handler: HandlerClass): Route => {
    const effective = stack.filter((m) => !type.skip?.includes(m.name));
    checkStack(typeOf(type), effective, ports);
    return {
      handler,
      names: effective.map((m) => m.name),
      run: build(effective),
      resolve: resolver(container, handler),
    };
  };
  for (const handler of options.handlers) {
    const type = handledBy(handler);
    const events = subscribedTo(handler);
    for (const event of events ?? []) {
      const byClass = subscribers.get(event) ?? new Map<HandlerClass, Route>();
      subscribers.set(event, byClass.set(handler, routeOf(event, handler)));
    }
    if (!type && events) continue;
    if (!type)
      throw new UseCaseError(
        'bad_handler',
        `${handler.name} is not marked with @handles(...) or @on(...) — decorate it, e.g. @handles(MoveInventory)`,
      );
    const taken = routes.get(type);
    if (taken)
      throw new UseCaseError(
        'duplicate_handler',
        `${typeOf(type)} has two handlers, ${taken.handler.name} and ${handler.name} — ` +
          'keep exactly one in createMediator({ handlers })',
      );
    routes.set(type, routeOf(type, handler));
  }
  const subscriptions = [...subscribers].flatMap(([event, byClass]) =>
    [...byClass.keys()].map((handler) => ({ event, handler })),
  );

  /** The route of subscriber `handler` of `type` (a delivery from its queue). */
  function subscriberRoute(type: RequestClass, handler: HandlerClass): Route {
    const found = subscribers.get(type)?.get(handler);
    if (!found)
      throw new UseCaseError(
        'no_handler',
        `${handler.name} does not subscribe to ${typeOf(type)} — mark it @on(${typeOf(type)}) and add it to ` +
          'createMediator(container, { handlers })',
      );
    return found;
  }

  function route(type: RequestClass): Route {
    const found = routes.get(type);
    if (!found)
      throw new UseCaseError(
        'no_handler',
        `No handler for ${typeOf(type)} — write a class marked @handles(${typeOf(type)}) and add it to ` +
          'createMediator(container, { handlers })',
      );
    return found;
  }

  function dispatch(
    request: AnyRequest,
    options: SendOptions,
    parent: Context | undefined,
    streaming = false,
  ): Promise<AnyResult> {
    if (typeof request !== 'object' || request === null) {
      return Promise.reject(
        new UseCaseError(
          'misuse',
          `send() takes a request instance, e.g. MoveInventory.from(body); got ${String(request)}`,
        ),
      );
    }
    const type = request.constructor as RequestClass;
    try {
      const found = options.subscriber ? subscriberRoute(type, options.subscriber) : route(type);
      const run = streaming ? (found.streamed ??= streamRun(type)) : found.run;
      const meta: Meta = parent
        ? {
            ...parent.meta,
            idempotencyKey: undefined,
            message: undefined,
            job: undefined,
            ...options,
            requestId: options.requestId ?? parent.meta.requestId,
            tenant: options.tenant ?? parent.meta.tenant,
          }
        : {
            actor: options.actor,
            idempotencyKey: options.idempotencyKey,
            message: options.message,
            job: options.job,
            requestId: options.requestId ?? nextRequestId(),
            tenant: options.tenant ?? 'default',
          };
      return run(new Context(request, type, meta, ports, parent, found.resolve(), dispatch as never));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  function streamRun(type: RequestClass): (ctx: Context) => Promise<AnyResult> {
    const opening = streamStack(stack);
    checkStack(`${typeOf(type)} (streamed)`, opening, ports);
    return build(opening);
  }

  async function stream(request: AnyRequest, options: SendOptions): Promise<AnyResult> {
    const opened = await dispatch(request, options, undefined, true);
    if (!opened.ok) return opened;
    if (!isAsyncIterable(opened.value)) {
      const type = typeOf(request.constructor as RequestClass);
      throw new UseCaseError(
        'bad_handler',
        `The handler of ${type} returned ${typeof opened.value} to stream() — return ok(items) where items is an ` +
          'async iterable (e.g. an async generator)',
      );
    }
    return { ...opened, value: guarded(opened.value, options.signal) };
  }

  return {
    ports,
    send: (request, options = {}) => dispatch(request, options, undefined) as never,
    stream: (request, options = {}) => stream(request, options) as never,
    describe(type) {
      const subscribed = [...(subscribers.get(type)?.values() ?? [])];
      const { names, handler } = routes.has(type) || subscribed.length === 0 ? route(type) : subscribed[0]!;
      const steps = stepsOf(type);
      return {
        middleware: names,
        handler: routes.has(type) ? handler.name : '',
        ...(steps ? { steps } : {}),
        ...(subscribed.length > 0 ? { subscribers: subscribed.map((r) => r.handler.name) } : {}),
      };
    },
    subscriptions: () => subscriptions,
  };
}

/**
 * How a route gets its handler: from the container on each send (MediatR) when the user bound it, in whatever
 * scope; when the mediator binds it itself (a singleton), once, on first use.
 */
function resolver(container: Container, handler: HandlerClass): () => Handler<AnyRequest> {
  if (container.isBound(handler)) return () => container.get<Handler<AnyRequest>>(handler);
  container.bind(handler).toSelf().inSingletonScope();
  let instance: Handler<AnyRequest> | undefined;
  return () => (instance ??= container.get<Handler<AnyRequest>>(handler));
}
