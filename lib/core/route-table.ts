// The mediator's route table: for each request type (and each event subscriber), its handler and its checked,
// composed stack, made once at start-up.
import type { Container } from 'inversify';
import type { Context, Handler, HandlerClass } from './context.js';
import { UseCaseError } from './errors.js';
import { stepsOf } from './flow.js';
import { handledBy, subscribedTo } from './handler.js';
import type { Middleware } from './middleware.js';
import type { Ports } from './ports.js';
import { typeOf, type AnyRequest, type RequestClass } from './request.js';
import type { AnyResult } from './result.js';
import { build, checkStack, streamStack } from './stack.js';

/** Where a send of one request type goes. */
export interface Route {
  readonly handler: HandlerClass;
  /** The effective stack's names, outermost first. */
  readonly names: readonly string[];
  readonly run: (ctx: Context) => Promise<AnyResult>;
  /** The stream stack's composition, made on the first `stream()` of the type. */
  streamed?: (ctx: Context) => Promise<AnyResult>;
  readonly resolve: () => Handler<AnyRequest>;
}

/** What `mediator.describe(type)` returns. */
export interface Description {
  /** The effective stack, outermost first. */
  readonly middleware: readonly string[];
  /** The handler's class name ('' for an event that only has subscribers). */
  readonly handler: string;
  /** A flow's steps, in order. */
  readonly steps?: readonly string[];
  /** An event's subscribers (@on), in registration order. */
  readonly subscribers?: readonly string[];
}

/** Every route of a mediator, by request type, and every event subscriber's, by event and class. */
export class RouteTable {
  readonly #routes = new Map<RequestClass, Route>();
  readonly #subscribers = new Map<RequestClass, Map<HandlerClass, Route>>();

  constructor(
    private readonly container: Container,
    private readonly stack: readonly Middleware[],
    private readonly ports: Ports,
    handlers: readonly HandlerClass[],
  ) {
    for (const handler of handlers) this.#add(handler);
  }

  /** The route of a request type; throws the fix when no handler was registered for it. */
  route(type: RequestClass): Route {
    const found = this.#routes.get(type);
    if (found) return found;
    throw new UseCaseError(
      'no_handler',
      `No handler for ${typeOf(type)} — write a class marked @handles(${typeOf(type)}) and add it to ` +
        'createMediator(container, { handlers })',
    );
  }

  /** The route of subscriber `handler` of event `type` (a delivery from its queue). */
  subscriber(type: RequestClass, handler: HandlerClass): Route {
    const found = this.#subscribers.get(type)?.get(handler);
    if (found) return found;
    throw new UseCaseError(
      'no_handler',
      `${handler.name} does not subscribe to ${typeOf(type)} — mark it @on(${typeOf(type)}) and add it to ` +
        'createMediator(container, { handlers })',
    );
  }

  /**
   * How a streamed send of `route`'s type runs: the middleware that take part in streams, whatever the type skips
   * otherwise (a streamed query's opening is audited).
   */
  streamed(type: RequestClass, route: Route): (ctx: Context) => Promise<AnyResult> {
    if (route.streamed) return route.streamed;
    const opening = streamStack(this.stack);
    checkStack(`${typeOf(type)} (streamed)`, opening, this.ports);
    return (route.streamed = build(opening));
  }

  describe(type: RequestClass): Description {
    const subscribed = [...(this.#subscribers.get(type)?.values() ?? [])];
    const handled = this.#routes.has(type);
    const { names, handler } = handled || subscribed.length === 0 ? this.route(type) : subscribed[0]!;
    const steps = stepsOf(type);
    return {
      middleware: names,
      handler: handled ? handler.name : '',
      ...(steps ? { steps } : {}),
      ...(subscribed.length > 0 ? { subscribers: subscribed.map((r) => r.handler.name) } : {}),
    };
  }

  /** Every event subscriber, as `subscribe()` serves them. */
  subscriptions(): Array<{ readonly event: RequestClass; readonly handler: HandlerClass }> {
    return [...this.#subscribers].flatMap(([event, byClass]) =>
      [...byClass.keys()].map((handler) => ({ event, handler })),
    );
  }

  /** Every request type with a route or a subscriber (their `skip` lists are checked at start-up). */
  types(): RequestClass[] {
    return [...new Set([...this.#routes.keys(), ...this.#subscribers.keys()])];
  }

  #add(handler: HandlerClass): void {
    const type = handledBy(handler);
    const events = subscribedTo(handler);
    for (const event of events ?? []) {
      const byClass = this.#subscribers.get(event) ?? new Map<HandlerClass, Route>();
      this.#subscribers.set(event, byClass.set(handler, this.#routeOf(event, handler)));
    }
    if (!type && events) return;
    if (!type)
      throw new UseCaseError(
        'bad_handler',
        `${handler.name} is not marked with @handles(...) or @on(...) — decorate it, e.g. @handles(MoveInventory)`,
      );
    const taken = this.#routes.get(type);
    if (taken)
      throw new UseCaseError(
        'duplicate_handler',
        `${typeOf(type)} has two handlers, ${taken.handler.name} and ${handler.name} — ` +
          'keep exactly one in createMediator({ handlers })',
      );
    this.#routes.set(type, this.#routeOf(type, handler));
  }

  #effective(type: RequestClass): Middleware[] {
    return this.stack.filter((m) => !type.skip?.includes(m.name));
  }

  #routeOf(type: RequestClass, handler: HandlerClass): Route {
    const effective = this.#effective(type);
    checkStack(typeOf(type), effective, this.ports);
    return {
      handler,
      names: effective.map((m) => m.name),
      run: build(effective),
      resolve: resolver(this.container, handler),
    };
  }
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
