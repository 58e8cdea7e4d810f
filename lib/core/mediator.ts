// createMediator: resolves the ports, checks and composes every request type's stack once (route-table.ts), then sends
// each request through its route to its handler.
import { randomUUID } from 'node:crypto';
import type { Container } from 'inversify';
import { Context, type HandlerClass, type Meta, type SendOptions } from './context.js';
import { UseCaseError } from './errors.js';
import { loggerOf } from './logger.js';
import type { Middleware, MiddlewareClass } from './middleware.js';
import type { Ports } from './ports.js';
import { DEFAULT_EXCHANGES, queueNames, type Exchanges } from './queues.js';
import type { AnyRequest, FailureOf, Request, RequestClass, ResultOf } from './request.js';
import { typeOf } from './request.js';
import type { AnyResult, Result } from './result.js';
import { RouteTable, type Description } from './route-table.js';
import { checkNames, resolveMiddleware } from './stack.js';
import { guarded, isAsyncIterable } from './stream.js';
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
   * Opens a streamed query — its handler returns `ok(asyncIterable)` — through the middleware that take part in
   * streams (validation, unit of work, audit of the opening, policy, and your own unless they say `stream: false`),
   * and resolves to the items to pull with `for await`, or the failure. Stopping early (`break`, `options.signal`)
   * closes the source.
   * @example
   * const opened = await mediator.stream(ExportAudit.from(query), { actor, signal });
   * if (opened.ok) for await (const record of opened.value) res.write(`${JSON.stringify(record)}\n`);
   */
  stream<C extends AnyRequest & Request<AsyncIterable<unknown>, any>>(
    request: C,
    options?: SendOptions,
  ): Promise<Result<ResultOf<C>, FailureOf<C>>>;
  /** A request type's effective stack, outermost first, its handler, a flow's steps and an event's subscribers. */
  describe(type: RequestClass): Description;
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

const PORT_TOKENS = {
  unitOfWork: TOKENS.UnitOfWork,
  idempotency: TOKENS.IdempotencyStore,
  audit: TOKENS.AuditStore,
  outbox: TOKENS.Outbox,
  inbox: TOKENS.Inbox,
  relay: TOKENS.Relay,
  jobs: TOKENS.JobStore,
  processes: TOKENS.ProcessStore,
  telemetry: TOKENS.Telemetry,
} as const;

/** The ports bound in `container` (the optional ones undefined when unbound), its clock, logger and queue names. */
function portsOf(container: Container): Ports {
  const optional = <T>(token: symbol) => container.get<T>(token, { optional: true });
  return {
    clock: optional(TOKENS.Clock) ?? Date,
    logger: loggerOf(container),
    queues: queueNames(optional<Exchanges>(TOKENS.Exchanges) ?? DEFAULT_EXCHANGES),
    ...Object.fromEntries(Object.entries(PORT_TOKENS).map(([name, token]) => [name, optional(token)])),
  };
}

/** A send's metadata: a nested one inherits its parent's (not its key, message or job). One shape, field by field. */
function metaOf(options: SendOptions, parent: Context | undefined): Meta {
  if (!parent) {
    return {
      actor: options.actor,
      idempotencyKey: options.idempotencyKey,
      message: options.message,
      job: options.job,
      process: options.process,
      requestId: options.requestId ?? nextRequestId(),
      tenant: options.tenant ?? 'default',
    };
  }
  const { beforeCommit: _hook, ...given } = options;
  return {
    ...parent.meta,
    idempotencyKey: undefined,
    message: undefined,
    job: undefined,
    ...given,
    requestId: options.requestId ?? parent.meta.requestId,
    tenant: options.tenant ?? parent.meta.tenant,
  };
}

/**
 * Builds a mediator. Throws `UseCaseError` when a handler is missing its `@handles`, two handle one type, a stack
 * breaks an ordering rule, a rule names no middleware, or a port a middleware needs is not bound.
 * @example
 * const mediator = createMediator(container, { handlers: [MoveInventoryHandler], middleware: recommendedStack() });
 */
export function createMediator(container: Container, options: MediatorOptions): Mediator {
  const ports = portsOf(container);
  const stack = (options.middleware ?? []).map((m) => resolveMiddleware(container, m, ports));
  const table = new RouteTable(container, stack, ports, options.handlers);
  checkNames(
    stack,
    table.types().map((type) => [typeOf(type), type.skip ?? []] as const),
  );

  function dispatch(
    request: AnyRequest,
    options: SendOptions,
    parent?: Context,
    streaming = false,
  ): Promise<AnyResult> {
    if (typeof request !== 'object' || request === null) {
      const got = String(request);
      return Promise.reject(
        new UseCaseError('misuse', `send() takes a request instance, e.g. MoveInventory.from(body); got ${got}`),
      );
    }
    const type = request.constructor as RequestClass;
    try {
      const route = options.subscriber ? table.subscriber(type, options.subscriber) : table.route(type);
      const run = streaming ? table.streamed(type, route) : route.run;
      const ctx = new Context(
        request,
        type,
        metaOf(options, parent),
        ports,
        parent,
        route.resolve(),
        dispatch as never,
      );
      if (options.beforeCommit) ctx.beforeCommit(options.beforeCommit);
      return run(ctx);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  async function stream(request: AnyRequest, options: SendOptions): Promise<AnyResult> {
    const opened = await dispatch(request, options, undefined, true);
    if (!opened.ok) return opened;
    if (!isAsyncIterable(opened.value)) {
      throw new UseCaseError(
        'bad_handler',
        `The handler of ${typeOf(request.constructor as RequestClass)} returned ${typeof opened.value} to stream() ` +
          '— return ok(items) where items is an async iterable (e.g. an async generator)',
      );
    }
    return { ...opened, value: guarded(opened.value, options.signal) };
  }

  const subscriptions = table.subscriptions();
  return {
    ports,
    send: (request, options = {}) => dispatch(request, options) as never,
    stream: (request, options = {}) => stream(request, options) as never,
    describe: (type) => table.describe(type),
    subscriptions: () => subscriptions,
  };
}
