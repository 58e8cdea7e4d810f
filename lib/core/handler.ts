// Handlers: one per request type, marked with @handles(Type), resolved from the container on each send; and event
// subscribers, any number per event, marked with @on(Event).
import type { Context } from './context.js';
import { UseCaseError } from './errors.js';
import { typeOf, type AnyRequest, type FailureOf, type RequestClass, type ResultOf } from './request.js';
import type { Result } from './result.js';

/**
 * Handles one request type. `load` reads the state it depends on (inside the transaction, locked where the
 * adapter can); `handle` applies the change and returns a Result.
 * @example
 * @handles(PayOrder) @injectable()
 * class PayOrderHandler implements Handler<PayOrder, Order> {
 *   constructor(@inject(Orders) private readonly orders: OrderRepository) {}
 *   load(cmd: PayOrder) { return this.orders.lock(cmd.orderId); }
 *   async handle(cmd: PayOrder, ctx: Context<PayOrder, Order>) { ... return ok({ orderId, status: 'paid' }); }
 * }
 */
export interface Handler<C extends AnyRequest, S = unknown> {
  load?(request: C, ctx: Context<C, S>): S | Promise<S>;
  handle(
    request: C,
    ctx: Context<C, S>,
  ): Result<ResultOf<C>, FailureOf<C>> | Promise<Result<ResultOf<C>, FailureOf<C>>>;
}

/** A handler class the container can construct. */
export type HandlerClass<C extends AnyRequest = any> = new (...args: any[]) => Handler<C, any>;

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

/** The queue-name part of a subscriber: its `static subscription`, else its class name. */
export function subscriptionOf(handler: HandlerClass): string {
  return (handler as { subscription?: string }).subscription ?? handler.name;
}
