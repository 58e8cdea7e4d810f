// The one place a job's life is decided: a worker takes it (running), its send settles it with its own commit
// (succeeded) or after the rollback (failed), and it is given up on (dead) — each settle staging the job's callback
// in the same transaction. The source only carries out the disposition returned here.
import type { Mediator } from '../core/mediator.js';
import type { JobFailure, JobOutcome, OutboxMessage, Ports } from '../core/ports.js';
import type { RequestClass } from '../core/request.js';
import type { Failure } from '../core/result.js';
import { JOB_HEADERS, keyedJobId, queuedJob } from '../core/staging.js';
import { isoTime } from '../core/time.js';
import { dispositionOf, sendDelivery } from '../messaging/consume.js';
import { settlement, thrown } from '../messaging/dispositions.js';
import type { Delivery, Disposition, QueueOptions } from '../messaging/ports.js';

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

const ACK: Disposition = { action: 'ack' };

/**
 * Runs deliveries of job `type` from `queue`: takes the job (a cancelled or settled one is acked unrun), sends it
 * with its success recorded in the send's own commit, records a final failure after the rollback, and records a
 * job given up on (a payload that never parses, a retry or an exception at the last attempt) as `dead` before the
 * source dead-letters it — or, when that cannot be recorded, hands it back uncounted (`requeue`).
 * @internal
 */
export function jobRunner(mediator: Mediator, type: RequestClass, queue: QueueOptions) {
  const { ports } = mediator;
  const givenUp = (delivery: Delivery, disposition: Disposition) =>
    settlement(disposition, delivery.attempt, queue.maxAttempts).action === 'dead';
  return async (delivery: Delivery): Promise<Disposition> => {
    let disposition: Disposition;
    try {
      disposition = await run(mediator, type, queue.queue, delivery);
    } catch (error) {
      const requeue = givenUp(delivery, thrown(error)) ? await giveUp(ports, delivery, error) : undefined;
      if (requeue) return requeue;
      throw error; // the source retries it, or dead-letters it at its last attempt
    }
    return (givenUp(delivery, disposition) && (await giveUp(ports, delivery, disposition.reason))) || disposition;
  };
}

/** Takes the job, sends it, and records a success in its commit or a final failure after its rollback. */
async function run(mediator: Mediator, type: RequestClass, consumer: string, delivery: Delivery): Promise<Disposition> {
  const { ports } = mediator;
  const job = delivery.message;
  const taken = ports.jobs ? await ports.jobs.start(job.id, isoTime(ports.clock.now())) : undefined;
  if (taken !== undefined && taken.state !== 'running') return ACK; // cancelled or settled: it does not run
  const attempts = taken?.attempts ?? 1;
  let callbackStaged = false;
  const result = await sendDelivery(mediator, consumer, type, delivery, {
    job,
    beforeCommit: async (committing) => {
      if (!ports.jobs || !committing?.ok || committing.replayed) return; // a duplicate's replay records nothing
      callbackStaged = await settle(ports, job, { state: 'succeeded', result: committing.value }, attempts);
    },
  });
  if (result.ok && callbackStaged) ports.relay?.wake(); // the callback committed with the job
  const disposition = dispositionOf(result);
  if (!result.ok && !result.replayed && disposition.action === 'ack')
    await settleAlone(ports, job, { state: 'failed', failure: jobFailure(result.failure) }, attempts);
  return disposition;
}

/**
 * Records a job given up on as `dead` (in a transaction of its own, with its onFailure callback); the record says
 * why in words its tenant may read (GetJob): a failure's message, never an exception's, which may quote SQL and
 * values. Returns `requeue` when that cannot be recorded: the message goes back in line, uncounted, rather than
 * leave its job `running` for good.
 */
async function giveUp(ports: Ports, delivery: Delivery, reason: unknown): Promise<Disposition | undefined> {
  const why =
    typeof reason === 'string'
      ? reason
      : `the handler threw ${reason instanceof Error ? `an ${reason.name}` : 'a value'} ` +
        '(its message is in the logs, not here)';
  const attempts = `${delivery.attempt} attempt${delivery.attempt === 1 ? '' : 's'}`;
  const failure: JobFailure = { kind: 'dead', message: `dead-lettered after ${attempts}: ${why}`.slice(0, 1_000) };
  try {
    await settleAlone(ports, delivery.message, { state: 'dead', failure }, delivery.attempt);
    return undefined;
  } catch (error) {
    ports.logger.warn('consumer: could not record a dead job; its message goes back in line', {
      messageId: delivery.message.id,
      type: delivery.message.type,
      attempt: delivery.attempt,
      reason,
      error,
    });
    return { action: 'requeue', reason: 'its dead state could not be recorded' };
  }
}

/** `settle` in a transaction of its own (a failure after the job's rollback, a dead letter), waking the relay. */
async function settleAlone(ports: Ports, job: OutboxMessage, outcome: JobOutcome, attempts: number): Promise<void> {
  if (!ports.jobs || !ports.unitOfWork) return;
  const staged = await ports.unitOfWork.transaction(
    () => settle(ports, job, outcome, attempts),
    () => true,
  );
  if (staged) ports.relay?.wake();
}

/**
 * Records a job's outcome and stages its callback (a job message of the callback's type, with the job's headers) in
 * the ambient transaction: the callback leaves with the commit that settles the job, or not at all. Returns whether
 * it staged one. A job settled already (a duplicate delivery that ran too, a commit reported lost) sends nothing.
 */
async function settle(ports: Ports, job: OutboxMessage, outcome: JobOutcome, attempts: number): Promise<boolean> {
  const at = isoTime(ports.clock.now());
  if (!(await ports.jobs!.settle(job.id, outcome, at))) return false;
  const callback = job.headers[outcome.state === 'succeeded' ? JOB_HEADERS.onSuccess : JOB_HEADERS.onFailure];
  if (callback === undefined) return false;
  const { onSuccess: _s, onFailure: _f, jobKey: _k, ...headers } = job.headers;
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
  await ports.jobs!.add([queuedJob(message, ports.queues.job(callback))]);
  return true;
}

/** The failure a job's record keeps. */
function jobFailure(failed: Failure): JobFailure {
  return { kind: failed.kind, message: failed.message, code: failed.kind === 'domain' ? failed.code : undefined };
}
