// Handlers: one per request type, marked with @handles(Type), resolved from the container on each send.
import type { Context } from './context.js';
import type { AnyRequest, FailureOf, RequestClass, ResultOf } from './request.js';
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
