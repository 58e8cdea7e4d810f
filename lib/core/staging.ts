// How `ctx.publish` and `ctx.enqueue` turn requests into outbox messages: publish() installs a Staging per send and
// writes what it holds with the commit. Job ids, job headers and queued job records are decided here, once.
import { randomUUID } from 'node:crypto';
import { UseCaseError } from './errors.js';
import { sha256 } from './json.js';
import type { JobRecord, OutboxMessage, Ports } from './ports.js';
import { payloadOf, typeOf, type AnyRequest, type RequestClass } from './request.js';
import { isoTime } from './time.js';

/** Options for `ctx.publish`. */
export interface StageOptions {
  /** Messages with the same aggregate id are delivered in order. */
  readonly aggregateId?: string;
}

/** Options of `ctx.enqueue`. */
export interface EnqueueOptions extends StageOptions {
  /** A command class sent (as a job of its own) once this job succeeded: see `JobSettled` (`usecasecore/jobs`). */
  readonly onSuccess?: RequestClass;
  /** A command class sent (as a job of its own) once this job failed or was dead-lettered: see `JobSettled`. */
  readonly onFailure?: RequestClass;
  /** Start no sooner than this many ms after `ctx.enqueue` was called (by the mediator's clock). */
  readonly delayMs?: number;
  /** Start no sooner than this time (a Date, or ISO 8601). */
  readonly runAt?: Date | string;
  /**
   * One job per key, for good (per tenant and type): the key makes the job's id, so enqueuing it again — from a
   * retried request, a replayed event — returns the same handle and adds nothing, even after the job ran (its
   * record is never purged). For work that must happen once, e.g. `welcome-email/${userId}`.
   */
  readonly key?: string;
  /**
   * Send the job under these trace headers (a process's span) rather than the active trace context, which the job
   * then links to (header `usecasecore-link`).
   */
  readonly trace?: Readonly<Record<string, string>>;
}

/** The header that carries the trace context that staged a job sent under another one (`EnqueueOptions.trace`). */
export const LINK_HEADER = 'usecasecore-link';
/** The W3C trace headers `EnqueueOptions.trace` may set (never another header: the tenant, the actor…). */
const TRACE_HEADERS = ['traceparent', 'tracestate', 'baggage'] as const;

/** What `ctx.enqueue` returns at once: the job's id (its outbox message's) and the queue its workers read. */
export interface JobHandle {
  readonly jobId: string;
  readonly queue: string;
}

/** The message headers that name a job's callbacks and its key. */
export const JOB_HEADERS = { onSuccess: 'onSuccess', onFailure: 'onFailure', key: 'jobKey' } as const;

/**
 * A job id for `key`: the same tenant, type and key always give the same id (a UUID v5-like shape).
 * @example keyedJobId('default', 'SendWelcome', 'user-1') // the same id on every call
 */
export function keyedJobId(tenant: string, type: string, key: string): string {
  const hex = sha256(JSON.stringify([tenant, type, key]));
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-5${hex.slice(13, 16)}-a${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

/** The record of a staged job message, `queued` in `queue`. */
export function queuedJob(message: OutboxMessage, queue: string): JobRecord {
  const key = message.headers[JOB_HEADERS.key];
  return {
    jobId: message.id,
    type: message.type,
    queue,
    tenant: message.headers.tenant ?? 'default',
    ...(key === undefined ? {} : { key }),
    state: 'queued',
    attempts: 0,
    enqueuedAt: message.occurredAt,
    runAt: message.availableAt ?? message.occurredAt,
  };
}

/** What a Staging reads of its send: a `Context` is one. */
export interface StagingSend {
  /** The staging request's type: the messages' `causationType`. */
  readonly type: string;
  readonly meta: {
    readonly requestId: string;
    readonly tenant: string;
    readonly actor?: { readonly id: string; readonly roles?: readonly string[] } | undefined;
  };
  readonly ports: Pick<Ports, 'clock' | 'telemetry' | 'queues'>;
}

/** The messages one send staged, in order; publish() writes them to the outbox with the commit. */
export class Staging {
  readonly messages: OutboxMessage[] = [];

  constructor(private readonly send: StagingSend) {}

  /** Stages an event. */
  event(event: AnyRequest, options: StageOptions = {}): void {
    this.#stage('event', event, options, undefined, undefined, {});
  }

  /** Stages a job and returns its handle; the same keyed job twice in one send is one job. */
  job(command: AnyRequest, options: EnqueueOptions = {}): JobHandle {
    const type = typeOf(command.constructor as RequestClass);
    const availableAt = this.#runAt(type, options);
    const id = options.key === undefined ? undefined : keyedJobId(this.send.meta.tenant, type, options.key);
    const headers: Record<string, string> = {};
    if (options.onSuccess) headers[JOB_HEADERS.onSuccess] = typeOf(options.onSuccess);
    if (options.onFailure) headers[JOB_HEADERS.onFailure] = typeOf(options.onFailure);
    if (options.key !== undefined) headers[JOB_HEADERS.key] = options.key;
    const message = this.#stage('job', command, options, id, availableAt, headers);
    return { jobId: message.id, queue: this.send.ports.queues.job(type) };
  }

  /** Forgets what was staged: a retried attempt starts clean. */
  clear(): void {
    this.messages.length = 0;
  }

  /** When a job may start (ISO 8601), from `delayMs` or `runAt`; checked, so a bad one throws here, at the call. */
  #runAt(type: string, options: EnqueueOptions): string | undefined {
    const misuse = (what: string) => new UseCaseError('misuse', `ctx.enqueue(${type}) in ${this.send.type}: ${what}`);
    if (options.delayMs !== undefined && options.runAt !== undefined) throw misuse('give delayMs or runAt, not both');
    if (options.delayMs !== undefined && !(Number.isFinite(options.delayMs) && options.delayMs >= 0))
      throw misuse(`delayMs ${options.delayMs} is not a number of ms ≥ 0 — for no delay, omit it`);
    const runAt = options.runAt ?? (options.delayMs ? this.send.ports.clock.now() + options.delayMs : undefined);
    if (runAt === undefined) return undefined;
    const when = new Date(runAt);
    if (Number.isNaN(when.getTime())) throw misuse(`runAt ${String(runAt)} is not a time — pass a Date or ISO 8601`);
    return when.toISOString();
  }

  /** The trace context into `headers`: the active one, or `parent` with the active one as its link. */
  #trace(headers: Record<string, string>, parent: Readonly<Record<string, string>> | undefined): void {
    const telemetry = this.send.ports.telemetry;
    if (!parent) return telemetry?.inject(headers);
    const staging: Record<string, string> = {};
    telemetry?.inject(staging);
    for (const name of TRACE_HEADERS) if (parent[name] !== undefined) headers[name] = parent[name];
    if (staging.traceparent && staging.traceparent !== parent.traceparent) headers[LINK_HEADER] = staging.traceparent;
  }

  #stage(
    kind: OutboxMessage['kind'],
    request: AnyRequest,
    options: StageOptions,
    id: string | undefined,
    availableAt: string | undefined,
    headers: Record<string, string>,
  ): OutboxMessage {
    const { meta, ports } = this.send;
    headers.requestId = meta.requestId;
    headers.tenant = meta.tenant;
    headers.causationType = this.send.type;
    if (meta.actor) {
      headers.actor = meta.actor.id;
      if (meta.actor.roles?.length) headers.actorRoles = meta.actor.roles.join(',');
    }
    this.#trace(headers, (options as EnqueueOptions).trace);
    const message: OutboxMessage = {
      id: id ?? randomUUID(),
      kind,
      type: typeOf(request.constructor as RequestClass),
      payload: payloadOf(request),
      occurredAt: isoTime(ports.clock.now()),
      aggregateId: options.aggregateId,
      headers,
      ...(availableAt ? { availableAt } : {}),
    };
    if (id === undefined || !this.messages.some((staged) => staged.id === id)) this.messages.push(message);
    return message;
  }
}
