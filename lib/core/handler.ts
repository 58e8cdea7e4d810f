// Which class handles what: one handler per request type, marked with @handles(Type), resolved from the container on
// each send; and event subscribers, any number per event, marked with @on(Event).
import type { Handler, HandlerClass } from './context.js';
import { UseCaseError } from './errors.js';
import { typeOf, type AnyRequest, type RequestClass } from './request.js';

const HANDLED = new WeakMap<HandlerClass, RequestClass>();

/**
 * Marks a class as the handler of a request type (checked against `Handler<C>` at compile time).
 * @example @handles(MoveInventory) @injectable() class MoveInventoryHandler implements Handler<MoveInventory> { ... }
 */
export function handles<C extends AnyRequest>(type: RequestClass<C>) {
  return (target: new (...args: any[]) => Handler<C, any>): void => {
    HANDLED.set(target, type);
  };
}

/** The request type a handler class was marked with, if any. */
export function handledBy(handler: HandlerClass): RequestClass | undefined {
  return HANDLED.get(handler);
}

const SUBSCRIBED = new WeakMap<HandlerClass, RequestClass[]>();

/**
 * Marks a class as a subscriber of an event: any number of classes per event, each a durable subscriber that
 * `subscribe()` runs on a queue of its own (`<service>.<ClassName>`, or its `static subscription`), through the
 * pipeline, with its own retries and dead letters — one subscriber's failure never re-runs another.
 * @example @on(OrderPaid) @injectable() class SendReceipt implements Handler<OrderPaid> { ... }
 */
export function on<E extends AnyRequest>(type: RequestClass<E>) {
  return (target: new (...args: any[]) => Handler<E, any>): void => {
    if (type.kind !== 'event') {
      throw new UseCaseError(
        'bad_handler',
        `@on(${typeOf(type)}) on ${target.name}: ${typeOf(type)} is a ${type.kind}, not an event — mark its one ` +
          `handler with @handles(${typeOf(type)})`,
      );
    }
    SUBSCRIBED.set(target, [...(SUBSCRIBED.get(target) ?? []), type]);
  };
}

/** The events a class subscribes to with @on, if any. */
export function subscribedTo(handler: HandlerClass): readonly RequestClass[] | undefined {
  return SUBSCRIBED.get(handler);
}
