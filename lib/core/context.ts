// What every middleware and handler sees for one send, and the handler contract that reads it.
import { UseCaseError } from './errors.js';
import type { OutboxMessage, Ports } from './ports.js';
import { typeOf, type AnyRequest, type FailureOf, type RequestClass, type ResultOf } from './request.js';
import type { AnyResult, Result } from './result.js';
import type { EnqueueOptions, JobHandle, StageOptions, Staging } from './staging.js';

/** Who is acting. */
export interface Actor {
  readonly id: string;
  readonly roles?: readonly string[];
}

/** Per-send metadata given to `send`. */
export interface SendOptions {
  readonly actor?: Actor | undefined;
  readonly tenant?: string | undefined;
  readonly requestId?: string | undefined;
  readonly idempotencyKey?: string | undefined;
  /**
   * The delivered message this send handles (set by consumers; the inbox dedupes on it), and which delivery of it
   * this is (1 the first time).
   */
  readonly message?: { readonly id: string; readonly consumer: string; readonly attempt?: number } | undefined;
  /** Aborts a stream (`mediator.stream`): the iteration stops between items and the source is closed. */
  readonly signal?: AbortSignal | undefined;
  /** Runs this event subscriber (@on) rather than the type's handler (set by `subscribe()` per queue). */
  readonly subscriber?: HandlerClass | undefined;
  /** The job message this send runs (set by `work()`): a rule can tell a job run from a client's send by it. */
  readonly job?: OutboxMessage | undefined;
  /**
   * The process step this send is (set by the process runner): `key` is stable across its retries — pass it to an
   * outside service that honours idempotency keys, so a retried step never acts twice there.
   */
  readonly process?: ProcessStepRef | undefined;
  /**
   * Runs inside the send's transaction, after the whole stack, just before a success commits (as `ctx.beforeCommit`
   * does), so a write of the caller's commits with the send's or not at all: the job runner records a job's result
   * so. Needs `unitOfWork()` in the stack.
   */
  readonly beforeCommit?: Hook | undefined;
}

/** A process step, as a send of it sees itself (`ctx.meta.process`). */
export interface ProcessStepRef {
  readonly processId: string;
  /** The process's name (`Checkout`). */
  readonly type: string;
  /** The step's index in its process. */
  readonly step: number;
  /** `run`, or `compensate` when it undoes a completed step. */
  readonly phase: 'run' | 'compensate' | 'end';
  /** The step's idempotency key, the same on every retry of the step. */
  readonly key: string;
}

/** Metadata as middleware see it (request id and tenant always set). */
export interface Meta extends Omit<SendOptions, 'beforeCommit'> {
  readonly requestId: string;
  readonly tenant: string;
}

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

/** When a commit hook runs. */
export type Phase = 'beforeCommit' | 'afterCommit' | 'afterRollback';
/** A commit hook; it gets the result being committed (none after a rollback caused by an exception). */
export type Hook = (result: AnyResult | undefined) => void | Promise<void>;

const NOTHING_TO_RUN = Promise.resolve();

async function runAll(hooks: ReadonlyArray<{ readonly hook: Hook }>, result: AnyResult | undefined): Promise<void> {
  for (const { hook } of hooks) await hook(result);
}

type Dispatch = <N extends AnyRequest>(
  request: N,
  options: SendOptions,
  parent: Context,
) => Promise<Result<ResultOf<N>, FailureOf<N>>>;

/**
 * The context of one send: the (parsed) request, its metadata, its loaded state and its staged messages.
 * @example async handle(cmd, ctx) { ctx.publish(new OrderPaid({ orderId: cmd.orderId })); return ok(...) }
 */
export class Context<C extends AnyRequest = AnyRequest, S = unknown> {
  /** The request; replaced by its parsed copy once validation has run. */
  request: C;
  /**
   * What `ctx.publish` / `ctx.enqueue` stage: installed by the publish() middleware, undefined without it.
   * @internal
   */
  staging: Staging | undefined;
  /** Attempts the unit of work has begun for this send (retries after a deadlock count); 0 without one. */
  attempts = 0;
  #loading: Promise<S> | undefined;
  #state: { value: S } | undefined;
  #hooks: Partial<Record<Phase, Array<{ readonly hook: Hook; readonly order: number }>>> | undefined;
  #hookCount = 0;

  /** Made by the mediator for each send. */
  constructor(
    request: C,
    readonly requestClass: RequestClass<C>,
    readonly meta: Meta,
    readonly ports: Ports,
    readonly parent: Context | undefined,
    readonly handler: Handler<C, S>,
    private readonly dispatch: Dispatch,
  ) {
    this.request = request;
  }

  /** The request's type name (`MoveInventory`). */
  get type(): string {
    return typeOf(this.requestClass);
  }

  /** Loads the handler's state once per attempt (policy, transition and handler share it). */
  load(): Promise<S> {
    this.#loading ??= Promise.resolve(
      this.handler.load ? this.handler.load(this.request, this) : (undefined as S),
    ).then((value) => {
      this.#state = { value };
      return value;
    });
    return this.#loading;
  }

  /** The loaded state; throws if read before `load()` resolved. */
  get state(): S {
    if (!this.#state)
      throw new UseCaseError(
        'misuse',
        `ctx.state of ${this.type} was read before it was loaded — await ctx.load() first`,
      );
    return this.#state.value;
  }

  /** Stages an event; it is written to the outbox in the transaction and leaves only after commit. */
  publish(event: AnyRequest, options: StageOptions = {}): void {
    this.#staging('publish', event).event(event, options);
  }

  /**
   * Stages a command to run later as a job (through the outbox, after commit) and returns its handle at once.
   * @example const { jobId } = ctx.enqueue(new LowStockAlert({ productId }), { onSuccess: RecordAlert, delayMs: 500 });
   */
  enqueue(command: AnyRequest, options: EnqueueOptions = {}): JobHandle {
    return this.#staging('enqueue', command).job(command, options);
  }

  /** Sends a nested request in this send's transaction (a savepoint); its messages leave at the outermost commit. */
  send<N extends AnyRequest>(request: N, options: SendOptions = {}): Promise<Result<ResultOf<N>, FailureOf<N>>> {
    return this.dispatch(request, options, this);
  }

  /** Runs `fn(result)` inside the transaction, after the whole stack, just before it commits a successful result. */
  beforeCommit(fn: Hook): void {
    this.#on('beforeCommit', fn);
  }
  /** Runs `fn(result)` after the commit (for a nested send: after the outermost commit). */
  afterCommit(fn: Hook): void {
    this.#on('afterCommit', fn);
  }
  /** Runs `fn(result)` after a rollback (`undefined` when an exception caused it). */
  afterRollback(fn: Hook): void {
    this.#on('afterRollback', fn);
  }

  /**
   * Runs the hooks of a phase in order (the unit of work does).
   * @internal
   */
  runHooks(phase: Phase, result: AnyResult | undefined): Promise<void> {
    const hooks = this.#hooks?.[phase];
    return hooks ? runAll(hooks, result) : NOTHING_TO_RUN; // most sends register none: no promise to make
  }

  /**
   * How many hooks are registered now: `reset(mark)` keeps those (registered outside the retried attempt).
   * @internal
   */
  hookMark(): number {
    return this.#hookCount;
  }

  /**
   * Forgets loaded state, staged messages and the hooks registered since `mark`: a retried attempt starts clean.
   * @internal
   */
  reset(mark = 0): void {
    this.#loading = undefined;
    this.#state = undefined;
    this.staging?.clear();
    for (const hooks of Object.values(this.#hooks ?? {})) hooks.splice(hooks.findIndex((h) => h.order >= mark) >>> 0);
    this.#hookCount = mark;
  }

  #on(phase: Phase, hook: Hook): void {
    ((this.#hooks ??= {})[phase] ??= []).push({ hook, order: this.#hookCount++ });
  }

  #staging(verb: 'publish' | 'enqueue', request: AnyRequest): Staging {
    if (this.staging) return this.staging;
    throw new UseCaseError(
      'misuse',
      `ctx.${verb}(${typeOf(request.constructor as RequestClass)}) in ${this.type} needs publish() in its ` +
        'middleware stack — add publish() after unitOfWork()',
    );
  }
}
