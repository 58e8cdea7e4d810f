// Jobs with handles: what `ctx.enqueue` returns, the JobStore port that records each job's life, durable callbacks,
// per-type retry policies, and the GetJob / CancelJob requests that read and stop them through the mediator.
import { injectable } from 'inversify';
import * as v from 'valibot';
import { isoTime, type Context } from '../core/context.js';
import { handles, type Handler } from '../core/handler.js';
import { sha256 } from '../core/json.js';
import type { OutboxMessage, Ports } from '../core/ports.js';
import { Command, Query, typeOf, type RequestClass } from '../core/request.js';
import { fail, notFound, ok, type Failure, type Result } from '../core/result.js';

/** Where a job is: waiting (`queued`, delayed ones too), `running` (retries included), or settled. */
export type JobState = 'queued' | 'running' | 'succeeded' | 'failed' | 'dead' | 'cancelled';

/** What `ctx.enqueue` returns at once: the job's id (its outbox message's) and the queue its workers read. */
export interface JobHandle {
  readonly jobId: string;
  readonly queue: string;
}

/** Why a job did not succeed: its handler's failure (`failed`), or why it was dead-lettered (`dead`). */
export interface JobFailure {
  readonly kind: Failure['kind'] | 'dead';
  readonly message: string;
  readonly code?: string | undefined;
}

/** A job as the JobStore records it. Times are ISO 8601. */
export interface JobRecord {
  readonly jobId: string;
  /** The command's type (`LowStockAlert`). */
  readonly type: string;
  readonly queue: string;
  readonly tenant: string;
  /** The `key` it was enqueued with: a keyed job's record is kept for good (see `EnqueueOptions.key`). */
  readonly key?: string | undefined;
  readonly state: JobState;
  /** Runs begun so far (a retry is one more). */
  readonly attempts: number;
  /** The handler's value, once `succeeded`. */
  readonly result?: unknown;
  /** Once `failed` or `dead`. */
  readonly failure?: JobFailure | undefined;
  readonly enqueuedAt: string;
  /** When it may start (its `delayMs` / `runAt`; the enqueue time otherwise). */
  readonly runAt: string;
  readonly startedAt?: string | undefined;
  readonly settledAt?: string | undefined;
}

/** A settled job's outcome, as `JobStore.settle` records it. */
export type JobOutcome =
  | { readonly state: 'succeeded'; readonly result: unknown }
  | { readonly state: 'failed' | 'dead'; readonly failure: JobFailure };

/**
 * Records each job's life: `queued` with the enqueuing commit, `running` when a worker takes it, then `succeeded`,
 * `failed` or `dead` with the commit that settles it (or `cancelled` before it started). Run `runJobStoreContract`
 * (`usecasecore/testing`) against an implementation.
 */
export interface JobStore {
  /** Records queued jobs with the ambient transaction's commit; a job whose id is recorded already is left alone. */
  add(jobs: readonly JobRecord[]): Promise<void>;
  /**
   * A worker takes the job (its own write, committed at once, outside any transaction): a `queued` or `running` job
   * becomes `running` with one more attempt. Returns the job as it is now (`cancelled` or settled: do not run it),
   * or `undefined` when no such job is recorded.
   */
  start(jobId: string, at: string): Promise<JobRecord | undefined>;
  /**
   * Records the outcome of a `queued` or `running` job in the ambient transaction (holding the job until it ends, so
   * two settles of one job are decided one after the other); `false` when the job was not queued or running (settled
   * already, cancelled, unknown), and then nothing changes. Only the settle that returned `true` sends a callback.
   */
  settle(jobId: string, outcome: JobOutcome, at: string): Promise<boolean>;
  /** Cancels a `queued` job (it will not run when its message arrives); `false` when it was not queued. */
  cancel(jobId: string, at: string): Promise<boolean>;
  /** The job, or `undefined`. */
  status(jobId: string): Promise<JobRecord | undefined>;
  /**
   * Maintenance (optional; `retention()` needs it for `jobsMs`): deletes the records of jobs settled (or cancelled)
   * more than `olderThanMs` ago, by the store's clock, and returns how many. Queued and running jobs stay, and so
   * do keyed jobs: their record is what makes the key's job the same one for good.
   */
  purge?(olderThanMs: number): Promise<number>;
}

/** Options of `ctx.enqueue`. */
export interface EnqueueOptions {
  /** Jobs with the same aggregate id are handed out in order. */
  readonly aggregateId?: string;
  /** A command class sent (as a job of its own) once this job succeeded: see `JobSettled`. */
  readonly onSuccess?: RequestClass;
  /** A command class sent (as a job of its own) once this job failed or was dead-lettered: see `JobSettled`. */
  readonly onFailure?: RequestClass;
  /** Start no sooner than this many ms after the commit. */
  readonly delayMs?: number;
  /** Start no sooner than this time (a Date, or ISO 8601). */
  readonly runAt?: Date | string;
  /**
   * One job per key, for good (per tenant and type): the key makes the job's id, so enqueuing it again — from a
   * retried request, a replayed event — returns the same handle and adds nothing, even after the job ran (its
   * record is never purged). For work that must happen once, e.g. `welcome-email/${userId}`.
   */
  readonly key?: string;
}

/**
 * What a callback command (`onSuccess` / `onFailure`) receives: the job's id, type, payload and attempts, and its
 * result (onSuccess) or failure (onFailure). Its headers carry the job's actor, tenant and trace context. Its schema
 * may name only the fields it needs (validation strips the others).
 * @example
 * class RecordAlert extends Command(v.object({ jobId: v.string(), payload: v.object({ productId: v.string() }),
 *   result: v.object({ alertId: v.string() }) })) {}
 */
export type JobSettled<P = unknown, R = unknown> = {
  readonly jobId: string;
  readonly type: string;
  readonly payload: P;
  readonly attempts: number;
} & (
  { readonly result: R; readonly failure?: undefined } | { readonly result?: undefined; readonly failure: JobFailure }
);

/**
 * A job type's retry policy (a `static retry` on its command class): attempts before it is dead-lettered, and an
 * exponential backoff with jitter between them.
 * @example
 * class SendReceipt extends Command(schema) { static readonly retry: RetryPolicy = { attempts: 8, baseMs: 500 } }
 */
export interface RetryPolicy {
  /** Deliveries before the job is dead-lettered. Default: the worker's `maxAttempts` (5). */
  readonly attempts?: number;
  /** The first wait; it doubles with each attempt. Default 100 ms. */
  readonly baseMs?: number;
  /** The longest wait. Default 30 s. */
  readonly maxMs?: number;
}

/**
 * The wait before attempt n+1: `baseMs · 2^(n-1)`, at most `maxMs`, of which a random half ("equal jitter"), so
 * jobs that failed together do not come back together.
 * @example backoff({ baseMs: 100 })(3) // between 200 and 400
 */
export function backoff(policy: RetryPolicy, random: () => number = Math.random): (attempt: number) => number {
  const { baseMs = 100, maxMs = 30_000 } = policy;
  return (attempt) => {
    const wait = Math.min(maxMs, baseMs * 2 ** (attempt - 1));
    return Math.round(wait / 2 + (random() * wait) / 2);
  };
}

/** The message headers that name a job's callbacks, and its key. */
const ON_SUCCESS = 'onSuccess';
const ON_FAILURE = 'onFailure';
const KEY = 'jobKey';

/** A job id for `key`: the same tenant, type and key give the same id. */
export function keyedJobId(tenant: string, type: string, key: string): string {
  const hex = sha256(JSON.stringify([tenant, type, key]));
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-5${hex.slice(13, 16)}-a${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

/** The headers a job message carries for its callbacks and its key. */
export function jobHeaders(options: EnqueueOptions): Record<string, string> {
  return {
    ...(options.onSuccess ? { [ON_SUCCESS]: typeOf(options.onSuccess) } : {}),
    ...(options.onFailure ? { [ON_FAILURE]: typeOf(options.onFailure) } : {}),
    ...(options.key === undefined ? {} : { [KEY]: options.key }),
  };
}

/** The queue a job type's workers read (the type itself when no MessageSource is bound). */
export function jobQueueOf(ports: Ports, type: string): string {
  return ports.source?.jobQueue(type) ?? type;
}

/** The record of a job message staged by `ctx.enqueue`, queued. */
export function queuedJob(message: OutboxMessage, queue: string): JobRecord {
  return {
    jobId: message.id,
    type: message.type,
    queue,
    tenant: message.headers.tenant ?? 'default',
    ...(message.headers[KEY] === undefined ? {} : { key: message.headers[KEY] }),
    state: 'queued',
    attempts: 0,
    enqueuedAt: message.occurredAt,
    runAt: message.availableAt ?? message.occurredAt,
  };
}

/**
 * Records a job's outcome and stages its callback (a job message of the callback's type, with the job's headers) in
 * the ambient transaction: the callback leaves with the commit that settles the job, or not at all. Returns whether
 * it staged one (wake the relay after the commit).
 */
export async function settleJob(
  ports: Ports,
  job: OutboxMessage,
  outcome: JobOutcome,
  attempts: number,
): Promise<boolean> {
  const at = isoTime(ports.clock.now());
  // A job settled already (a duplicate delivery that ran too, a commit that was reported lost) sends nothing more.
  if (!(await ports.jobs!.settle(job.id, outcome, at))) return false;
  const callback = job.headers[outcome.state === 'succeeded' ? ON_SUCCESS : ON_FAILURE];
  if (callback === undefined) return false;
  const { [ON_SUCCESS]: _s, [ON_FAILURE]: _f, [KEY]: _k, ...headers } = job.headers;
  const settled: JobSettled = {
    jobId: job.id,
    type: job.type,
    payload: job.payload,
    attempts,
    ...(outcome.state === 'succeeded' ? { result: outcome.result } : { failure: outcome.failure }),
  };
  const message: OutboxMessage = {
    id: keyedJobId(headers.tenant ?? 'default', callback, `${job.id}:${outcome.state}`),
    kind: 'job',
    type: callback,
    payload: settled,
    occurredAt: at,
    headers: { ...headers, causationType: job.type },
  };
  await ports.outbox!.add([message]);
  await ports.jobs!.add([queuedJob(message, jobQueueOf(ports, callback))]);
  return true;
}

/**
 * `settleJob` in a transaction of its own (a failure after the job's rollback, a dead letter), waking the relay for
 * the callback it staged.
 */
export async function settleJobAlone(ports: Ports, job: OutboxMessage, outcome: JobOutcome, attempts: number) {
  const staged = await ports.unitOfWork!.transaction(
    () => settleJob(ports, job, outcome, attempts),
    () => true,
  );
  if (staged) ports.relay?.wake();
}

/** The failure a job's record keeps. */
export function jobFailure(failed: Failure): JobFailure {
  return { kind: failed.kind, message: failed.message, code: failed.kind === 'domain' ? failed.code : undefined };
}

/**
 * Reads a job of the sender's tenant (`not_found` for another tenant's).
 * @example const job = await mediator.send(new GetJob({ jobId }), { actor, tenant }); // job.value.state
 */
export class GetJob extends Query(v.object({ jobId: v.pipe(v.string(), v.maxLength(100)) }))<JobRecord> {}

/**
 * Cancels a queued job of the sender's tenant (one cancelled already: ok again); `not_found`, or the domain failure
 * `already_started` once a worker took it (its `details.state` says where it is).
 * @example await mediator.send(new CancelJob({ jobId }), { actor });
 */
export class CancelJob extends Command(v.object({ jobId: v.pipe(v.string(), v.maxLength(100)) }))<
  { readonly jobId: string; readonly state: 'cancelled' },
  'already_started'
> {}

async function jobOf(ctx: Context, jobId: string): Promise<JobRecord | undefined> {
  const job = await ctx.ports.jobs!.status(jobId);
  return job?.tenant === ctx.meta.tenant ? job : undefined;
}

const noJob = (jobId: string) => notFound(`No job ${jobId} — check the id ctx.enqueue returned (and the tenant)`);

@handles(GetJob)
@injectable()
class GetJobHandler implements Handler<GetJob> {
  async handle(query: GetJob, ctx: Context<GetJob>): Promise<Result<JobRecord>> {
    const job = await jobOf(ctx, query.jobId);
    return job ? ok(job) : noJob(query.jobId);
  }
}

@handles(CancelJob)
@injectable()
class CancelJobHandler implements Handler<CancelJob> {
  async handle(command: CancelJob, ctx: Context<CancelJob>) {
    const job = await jobOf(ctx, command.jobId);
    if (!job) return noJob(command.jobId);
    const cancelled = { jobId: job.jobId, state: 'cancelled' as const };
    let { state } = job;
    if (state === 'queued') {
      if (await ctx.ports.jobs!.cancel(job.jobId, isoTime(ctx.ports.clock.now()))) return ok(cancelled);
      state = (await ctx.ports.jobs!.status(job.jobId))?.state ?? state; // taken (or cancelled) since the read
    }
    if (state === 'cancelled') return ok(cancelled); // cancelling twice is cancelling
    return fail('already_started', { state }, `Job ${job.jobId} is ${state}: only a queued job can be cancelled`);
  }
}

/**
 * The handlers of `GetJob` and `CancelJob`: add them to `createMediator(container, { handlers })` (and allow the
 * two types in your policy rules).
 * @example createMediator(container, { handlers: [...myHandlers, ...jobHandlers], middleware })
 */
export const jobHandlers = [GetJobHandler, CancelJobHandler] as const;
