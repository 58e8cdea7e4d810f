// Declared processes: a name, a typed input and ordered steps — commands sent each in a transaction of its own, with
// the command that undoes them, and waits for an event or a time — checked step to step by the compiler.
import type { HandlerClass } from '../core/context.js';
import { UseCaseError } from '../core/errors.js';
import { Command, typeOf, type AnyRequest, type Request, type RequestClass, type ResultOf } from '../core/request.js';
import type { Last, StepMismatch } from '../core/flow.js';
import { starter } from './start.js';

/** A command class a process can send as a step. */
export type StepCommand = RequestClass & (new (data: any) => AnyRequest);

type DataOf<C> = C extends new (data: infer D) => any ? D : never;
type OutOf<C> = C extends new (data: any) => infer I ? ResultOf<I> : never;

/** A step that sends `command`, with the previous step's result (or the process's input) as its input. */
export interface SendStep<In = any, Out = any> {
  readonly kind: 'send';
  readonly name: string;
  readonly command: StepCommand;
  /** Sent with this step's result as its input to undo it, when a later step fails. */
  readonly compensate?: StepCommand | undefined;
  /** Past this many ms from the step's start, the process compensates. */
  readonly deadlineMs?: number | undefined;
  /** Phantom: what the step takes and gives, for the compiler's check of the chain. */
  readonly io?: { readonly input: In; readonly output: Out };
}

/** A step that waits for an event correlated by a key; it passes its input on as its result. */
export interface WaitStep<T = any> {
  readonly kind: 'wait';
  readonly name: string;
  readonly event: RequestClass;
  /** The key the awaited event must carry, from the step's input; `undefined` means there is nothing to wait for. */
  readonly key: (input: T) => string | undefined;
  /** The key an arriving event carries. */
  readonly match: (event: any) => string;
  /** Whether the event lets the process go on; a string says why it does not (the process compensates). */
  readonly accept: (event: any) => true | string;
  /** Past this many ms without the event, the process compensates. */
  readonly timeoutMs: number;
  readonly io?: { readonly input: T; readonly output: T };
}

/** A step that waits until a time; it passes its input on as its result. */
export interface SleepStep<T = any> {
  readonly kind: 'sleep';
  readonly name: string;
  /** When to go on (ms since the epoch, a Date or ISO 8601), from the step's input. */
  readonly until: (input: T, now: number) => number | Date | string;
  readonly io?: { readonly input: T; readonly output: T };
}

/** Any step. */
export type ProcessStepDef = SendStep | WaitStep | SleepStep;

type InOf<S> = S extends { readonly io?: { readonly input: infer I } } ? I : never;
type ResOf<S> = S extends { readonly io?: { readonly output: infer O } } ? O : never;
export type { StepMismatch }; // the same marker as flow()'s: one message for one mistake
/** The steps, each after the first checked against the previous one's result. */
export type ProcessChain<
  S extends readonly unknown[],
  Prev = never,
  Done extends readonly unknown[] = [],
> = S extends readonly [infer Step, ...infer Rest]
  ? ProcessChain<
      Rest,
      ResOf<Step>,
      [...Done, Done extends [] ? Step : [Prev] extends [InOf<Step>] ? Step : StepMismatch<Prev, InOf<Step>>]
    >
  : Done;

/** Options of a process. */
export interface ProcessOptions {
  /** Past this many ms from its start, the process compensates what it did. */
  readonly deadlineMs?: number;
  /**
   * Sent once when the process ends `failed` or `compensated`, with `{ processId, input, failure }`: what must
   * happen whichever way it fell through (the sample cancels the order).
   */
  readonly onFailure?: StepCommand;
}

/** What starting a process answers: its id, in the transaction that started it. */
export interface ProcessStarted {
  readonly processId: string;
  readonly state: 'running';
}

/** The command a declared process is: send it to start one (its first step's input), in any transaction. */
export type ProcessRequest<S extends readonly ProcessStepDef[]> = Request<ProcessStarted> & Readonly<InOf<S[0]>>;

/** A declared process: a command of its own whose handler starts it, with its steps and options. */
export interface ProcessClass<S extends readonly ProcessStepDef[] = readonly ProcessStepDef[]> extends RequestClass<
  ProcessRequest<S>
> {
  new (data: InOf<S[0]>): ProcessRequest<S>;
  readonly type: string;
  readonly steps: S;
  readonly options: ProcessOptions;
  /** The handler that starts it: `processes([...])` registers it. */
  readonly handler: HandlerClass;
  /** Phantom: the last step's result. */
  readonly output?: ResOf<Last<S>>;
}

/**
 * A step that sends `command` in a transaction of its own, through the whole stack, with an idempotency key made of
 * the process id and the step. `compensate` undoes it: it is sent with this step's result when a later step fails.
 * `name` is what the process's record calls it (default: the command's type).
 * @example step(ReserveStock, { compensate: ReleaseStock })
 */
export function step<C extends StepCommand>(
  command: C,
  options: { readonly compensate?: StepCommand; readonly deadlineMs?: number; readonly name?: string } = {},
): SendStep<DataOf<C>, OutOf<C>> {
  const { name = typeOf(command), ...rest } = options;
  return { kind: 'send', name, command, ...rest };
}

/**
 * A step that waits, holding nothing, for the event whose `match(event)` is `key(input)`; an event that arrived
 * before the wait began is not lost. Past `timeoutMs` (or when `accept` refuses the event) the process compensates.
 * @example
 * waitFor(PaymentConfirmed, {
 *   key: (charge: { chargeId: string; status: string }) => (charge.status === 'pending' ? charge.chargeId : undefined),
 *   match: (event) => event.chargeId,
 *   accept: (event) => event.status === 'succeeded' || `the payment ${event.status}`,
 *   timeoutMs: 30_000,
 * })
 */
export function waitFor<E extends RequestClass, T>(
  event: E,
  options: {
    readonly key: (input: T) => string | undefined;
    readonly match: (event: InstanceType<E>) => string;
    readonly accept?: (event: InstanceType<E>) => true | string;
    readonly timeoutMs: number;
  },
): WaitStep<T> {
  if (!(Number.isFinite(options.timeoutMs) && options.timeoutMs > 0))
    throw new UseCaseError('misuse', `waitFor(${typeOf(event)}): timeoutMs must be a number of ms > 0`);
  return {
    kind: 'wait',
    name: `wait ${typeOf(event)}`,
    event,
    key: options.key,
    match: options.match,
    accept: options.accept ?? (() => true),
    timeoutMs: options.timeoutMs,
  };
}

/**
 * A step that waits until a time, holding nothing (a delayed job); a time past goes on at once.
 * @example sleep((order: { shipAt: string }) => order.shipAt)
 */
export function sleep<T>(until: (input: T, now: number) => number | Date | string): SleepStep<T> {
  return { kind: 'sleep', name: 'sleep', until };
}

/**
 * Declares a process: a command of its own, named `name`, whose handler starts it — the process's record and its
 * first step's job are written with the transaction that sends it, and it answers `{ processId, state: 'running' }`.
 * Run its steps with `processes([Process])` (handlers, policy rules and the job types to work). A step whose input
 * cannot take the previous step's result is a compile error; `mediator.describe(Process).steps` lists them.
 * @example
 * const Checkout = process('Checkout', [
 *   step(ReserveStock, { compensate: ReleaseStock }),
 *   step(ChargeCard, { compensate: RefundCharge }),
 *   step(ShipReserved, { name: 'ShipOrder' }),
 * ], { onFailure: CancelCheckout }); // its input is ReserveStock's
 * // in a handler: const { processId } = unwrap(await ctx.send(new Checkout({ orderId, card })));
 */
export function process<const S extends readonly [SendStep, ...ProcessStepDef[]]>(
  name: string,
  steps: S & ProcessChain<S>,
  options: ProcessOptions = {},
): ProcessClass<S> {
  if (!/^[A-Za-z][\w.-]{0,99}$/.test(name))
    throw new UseCaseError('misuse', `process(${JSON.stringify(name)}): name it with letters, digits, _ . or -`);
  const first = steps[0] as SendStep;
  const Process = class extends Command(first.command.schema) {
    static readonly type = name;
    static readonly steps = steps;
    static readonly options = options;
    static handler: HandlerClass;
  };
  Object.defineProperty(Process, 'name', { value: name });
  Process.handler = starter(Process as unknown as ProcessClass);
  return Process as unknown as ProcessClass<S>;
}
