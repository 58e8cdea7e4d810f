// Flows (u-case's `Micro::Cases.flow`): steps sent one after another in one transaction, each step's result the
// next step's input, stopping at the first failure.
import { injectable } from 'inversify';
import type { Context, HandlerClass } from './context.js';
import { handles } from './handler.js';
import {
  Command,
  payloadOf,
  typeOf,
  type AnyRequest,
  type FailureOf,
  type Request,
  type RequestClass,
  type ResultOf,
} from './request.js';
import type { Result } from './result.js';

/** A request class a flow can take as a step. */
export type StepClass = RequestClass & (new (data: any) => AnyRequest);

type DataOf<C> = C extends new (data: infer D) => any ? D : never;
type OutOf<C> = C extends new (data: any) => infer I ? ResultOf<I> : never;
type CodesOf<C> = C extends new (data: any) => infer I ? FailureOf<I> : never;
/** The last type of a tuple. */
export type Last<S extends readonly unknown[]> = S extends readonly [...unknown[], infer L] ? L : never;

/** In place of a step that cannot take the previous step's result: the compiler shows both types. */
export interface StepMismatch<Given, Expected> {
  readonly 'this step cannot take the previous step result as its input': { given: Given; expected: Expected };
}
/** The steps, each after the first checked against the previous one's result. */
export type Chain<
  S extends readonly unknown[],
  Prev = never,
  Done extends readonly unknown[] = [],
> = S extends readonly [infer Step, ...infer Rest]
  ? Chain<
      Rest,
      OutOf<Step>,
      [...Done, Done extends [] ? Step : [Prev] extends [DataOf<Step>] ? Step : StepMismatch<Prev, DataOf<Step>>]
    >
  : Done;

/** The request a flow is: the first step's input, the last step's result, every step's domain codes. */
export type FlowRequest<S extends readonly StepClass[]> = Request<OutOf<Last<S>>, CodesOf<S[number]>> &
  Readonly<DataOf<S[0]>>;

/** A flow's class: a command of its own, with its steps and the handler to register. */
export interface FlowClass<S extends readonly StepClass[]> extends RequestClass<FlowRequest<S>> {
  new (data: DataOf<S[0]>): FlowRequest<S>;
  readonly type: string;
  readonly steps: S;
  /** Register it with the other handlers: `createMediator(container, { handlers: [..., MyFlow.handler] })`. */
  readonly handler: HandlerClass;
}

/**
 * Declares a flow: a command of its own (named `name`) whose handler sends `steps` in order, in the flow's
 * transaction — each step a nested send with its own validation, policy and audit record (under the flow's request
 * id), the first failure returned as the flow's and rolling back the steps before it. Idempotency applies to the
 * flow as one send. A step whose input cannot take the previous step's result is a compile error.
 * @example
 * const PlaceAndPay = flow('PlaceAndPay', [PlaceOrder, PayOrder]);
 * createMediator(container, { handlers: [PlaceOrderHandler, PayOrderHandler, PlaceAndPay.handler], middleware });
 * const paid = await mediator.send(PlaceAndPay.from(body), { idempotencyKey });
 */
export function flow<const S extends readonly [StepClass, ...StepClass[]]>(
  name: string,
  steps: S & Chain<S>,
): FlowClass<S> {
  const Flow = class extends Command(steps[0].schema) {
    static readonly type = name;
    static readonly steps = steps;
    static handler: HandlerClass;
  };
  Object.defineProperty(Flow, 'name', { value: name });

  class FlowHandler {
    async handle(request: AnyRequest, ctx: Context): Promise<Result<unknown, string>> {
      let input: unknown = payloadOf(request);
      let result: Result<unknown, string> | undefined;
      for (const Step of steps as readonly StepClass[]) {
        result = await ctx.send(Step.from(input) as AnyRequest);
        if (!result.ok) return result;
        input = result.value;
      }
      return result!;
    }
  }
  Object.defineProperty(FlowHandler, 'name', { value: `${name}Handler` });
  injectable()(FlowHandler);
  handles(Flow as never)(FlowHandler);
  Flow.handler = FlowHandler;
  return Flow as unknown as FlowClass<S>;
}

/** The step names of a flow or a process class (its `static steps`), or undefined for any other request class. */
export function stepsOf(type: RequestClass): string[] | undefined {
  const steps = (type as { steps?: ReadonlyArray<StepClass | { readonly kind: string; readonly name: string }> }).steps;
  return steps?.map((step) => (typeof step === 'function' ? typeOf(step as StepClass) : step.name));
}
