// What every middleware and handler sees for one send.
import { randomUUID } from 'node:crypto';
import { UseCaseError } from './errors.js';
import type { Handler, HandlerClass } from './handler.js';
import { jobHeaders, jobQueueOf, keyedJobId, type EnqueueOptions, type JobHandle } from '../jobs/jobs.js';
import type { OutboxMessage, Ports } from './ports.js';
import { payloadOf, typeOf, type AnyRequest, type FailureOf, type RequestClass, type ResultOf } from './request.js';
import type { Result } from './result.js';

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
  /** The delivered message this send handles (set by consumers; the inbox dedupes on it). */
  readonly message?: { readonly id: string; readonly consumer: string } | undefined;
  /** Aborts a stream (`mediator.stream`): the iteration stops between items and the source is closed. */
  readonly signal?: AbortSignal | undefined;
  /** Runs this event subscriber (@on) rather than the type's handler (set by `subscribe()` per queue). */
  readonly subscriber?: HandlerClass | undefined;
  /** The job message this send runs (set by `work()`; the jobs() middleware records its life). */
  readonly job?: OutboxMessage | undefined;
}

/** Metadata as middleware see it (request id and tenant always set). */
export interface Meta extends SendOptions {
  readonly requestId: string;
  readonly tenant: string;
}

let lastMs = Number.NaN;
let lastIso = '';
/**
 * `new Date(ms).toISOString()`, remembered for the last millisecond asked: formatting costs ~0.6 µs on Node 24, and
 * under load many sends share a millisecond.
 * @example isoTime(ctx.ports.clock.now()) // '2026-11-29T19:30:00.000Z'
 */
export function isoTime(ms: number): string {
  if (ms !== lastMs) {
    lastIso = new Date(ms).toISOString();
    lastMs = ms;
  }
  return lastIso;
}

/** When a commit hook runs. */
export type Phase = 'beforeCommit' | 'afterCommit' | 'afterRollback';
/** A commit hook; it gets the result being committed (none after a rollback caused by an exception). */
export type Hook = (result: AnyResult | undefined) => void | Promise<void>;

const NOTHING_TO_RUN = Promise.resolve();

async function runAll(hooks: ReadonlyArray<{ readonly hook: Hook }>, result: AnyResult | undefined): Promise<void> {
  for (const { hook } of hooks) await hook(result);
}

/** Any result, as middleware pass it along. */
export type AnyResult = Result<unknown, string>;
type Dispatch = <N extends AnyRequest>(
  request: N,
  options: SendOptions,
  parent: Context,
) => Promise<Result<ResultOf<N>, FailureOf<N>>>;

/** Options for `publish` / `enqueue`. */
export interface StageOptions {
  /** Messages with the same aggregate id are delivered in order. */
  readonly aggregateId?: string;
}

/**
 * The context of one send: the (parsed) request, its metadata, its loaded state and its staged messages.
 * @example async handle(cmd, ctx) { ctx.publish(new OrderPaid({ orderId: cmd.orderId })); return ok(...) }
 */
export class Context<C extends AnyRequest = AnyRequest, S = unknown> {
  /** The request; replaced by its parsed copy once validation has run. */
  request: C;
  /** Messages staged by `publish`/`enqueue`; `undefined` while no publish() middleware enabled staging. */
  outbox: OutboxMessage[] | undefined;
  /** Attempts the unit of work has begun for this send (retries after a deadlock count); 0 without one. */
  attempts = 0;
  #loading: Promise<S> | undefined;
  #state: { value: S } | undefined;
  #hooks: Partial<Record<Phase, Array<{ readonly hook: Hook; readonly order: number }>>> | undefined;
  #hookCount = 0;

  constructor(
    request: C,
    readonly requestClass: RequestClass<C>,
    readonly meta: Meta,
    readonly ports: Ports,
    readonly parent: Context | undefined,
    readonly handler: Handler<C, S>,
    readonly dispatch: Dispatch,
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
    this.#stage('event', event, options);
  }

  /**
   * Stages a command to run later as a job (through the outbox, after commit) and returns its handle at once.
   * @example const { jobId } = ctx.enqueue(new LowStockAlert({ productId }), { onSuccess: RecordAlert, delayMs: 500 });
   */
  enqueue(command: AnyRequest, options: EnqueueOptions = {}): JobHandle {
    const type = typeOf(command.constructor as RequestClass);
    if (options.delayMs !== undefined && options.runAt !== undefined)
      throw new UseCaseError('misuse', `ctx.enqueue(${type}) in ${this.type}: give delayMs or runAt, not both`);
    if (options.delayMs !== undefined && !(Number.isFinite(options.delayMs) && options.delayMs >= 0))
      throw new UseCaseError(
        'misuse',
        `ctx.enqueue(${type}) in ${this.type}: delayMs ${options.delayMs} is not a number of ms ≥ 0 — ` +
          'for no delay, omit it',
      );
    const runAt = options.runAt ?? (options.delayMs ? this.ports.clock.now() + options.delayMs : undefined);
    const when = runAt === undefined ? undefined : new Date(runAt);
    if (when && Number.isNaN(when.getTime()))
      throw new UseCaseError(
        'misuse',
        `ctx.enqueue(${type}) in ${this.type}: runAt ${String(runAt)} is not a time — pass a Date or ISO 8601`,
      );
    const availableAt = when?.toISOString();
    const id = options.key === undefined ? undefined : keyedJobId(this.meta.tenant, type, options.key);
    const message = this.#stage('job', command, options, { id, availableAt, headers: jobHeaders(options) });
    return { jobId: message.id, queue: jobQueueOf(this.ports, type) };
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

  /** Runs the hooks of a phase in order (the unit of work does). */
  runHooks(phase: Phase, result: AnyResult | undefined): Promise<void> {
    const hooks = this.#hooks?.[phase];
    return hooks ? runAll(hooks, result) : NOTHING_TO_RUN; // most sends register none: no promise to make
  }

  /** How many hooks are registered now: `reset(mark)` keeps those (registered outside the retried attempt). */
  hookMark(): number {
    return this.#hookCount;
  }

  /** Forgets loaded state, staged messages and the hooks registered since `mark`: a retried attempt starts clean. */
  reset(mark = 0): void {
    this.#loading = undefined;
    this.#state = undefined;
    if (this.outbox) this.outbox = [];
    for (const hooks of Object.values(this.#hooks ?? {})) hooks.splice(hooks.findIndex((h) => h.order >= mark) >>> 0);
    this.#hookCount = mark;
  }

  #on(phase: Phase, hook: Hook): void {
    ((this.#hooks ??= {})[phase] ??= []).push({ hook, order: this.#hookCount++ });
  }

  #stage(
    kind: 'event' | 'job',
    request: AnyRequest,
    options: StageOptions,
    job: { id?: string | undefined; availableAt?: string | undefined; headers?: Record<string, string> } = {},
  ): OutboxMessage {
    const verb = kind === 'event' ? 'publish' : 'enqueue';
    if (!this.outbox) {
      throw new UseCaseError(
        'misuse',
        `ctx.${verb}(${typeOf(request.constructor as RequestClass)}) in ${this.type} needs publish() in its ` +
          'middleware stack — add publish() after unitOfWork()',
      );
    }
    const headers: Record<string, string> = {
      ...job.headers,
      requestId: this.meta.requestId,
      tenant: this.meta.tenant,
      causationType: this.type,
    };
    if (this.meta.actor) {
      headers.actor = this.meta.actor.id;
      if (this.meta.actor.roles?.length) headers.actorRoles = this.meta.actor.roles.join(',');
    }
    this.ports.telemetry?.inject(headers);
    const message: OutboxMessage = {
      id: job.id ?? randomUUID(),
      kind,
      type: typeOf(request.constructor as RequestClass),
      payload: payloadOf(request),
      occurredAt: isoTime(this.ports.clock.now()),
      aggregateId: options.aggregateId,
      headers,
      ...(job.availableAt ? { availableAt: job.availableAt } : {}),
    };
    // The same keyed job twice in one send is one job.
    if (job.id === undefined || !this.outbox.some((staged) => staged.id === message.id)) this.outbox.push(message);
    return message;
  }
}
