// Job workers: each job type's shared queue, served with its retry policy by the job runner.
import { UseCaseError } from '../core/errors.js';
import type { Mediator } from '../core/mediator.js';
import { typeOf, type RequestClass, type RetryPolicy } from '../core/request.js';
import { byType, queueOptions, serve, type ConsumerOptions } from '../messaging/consume.js';
import type { MessageSource, QueueOptions } from '../messaging/ports.js';
import { jobRunner } from './run.js';

/**
 * Runs jobs (commands staged with `ctx.enqueue`) of the given types from their shared job queues, each with its
 * type's retry policy (`static retry`, else `options.maxAttempts` and the source's backoff). With a JobStore bound,
 * each job's life is recorded (running, then succeeded, failed or dead) and its callbacks sent.
 * @example
 * const workers = await work(mediator, source, [SendReceipt]); …; await Promise.all(workers.map((w) => w.close()));
 */
export function work(
  mediator: Mediator,
  source: MessageSource,
  jobs: readonly RequestClass[],
  options: ConsumerOptions = {},
) {
  for (const job of jobs) checkRecordable(mediator, job);
  return Promise.all(
    jobs.map((job) => {
      const retry = options.retry ?? job.retry;
      const queue: QueueOptions = {
        ...queueOptions(mediator.ports.queues.job(typeOf(job)), 'job', [job], options),
        ...(retry?.attempts === undefined ? {} : { maxAttempts: retry.attempts }),
        ...(retry ? { retryDelayMs: backoff(retry) } : {}),
      };
      const runner = jobRunner(mediator, job, queue);
      return serve(
        mediator,
        source,
        queue,
        [job],
        byType(queue.queue, [job], (_type, delivery) => runner(delivery)),
      );
    }),
  );
}

/**
 * With a JobStore bound, a job settles in its send's transaction and stages its callbacks in the outbox (serve()
 * checks the inbox, and with it the unit of work). Said at start-up rather than found out from a stuck job.
 */
function checkRecordable(mediator: Mediator, job: RequestClass): void {
  const { jobs, outbox } = mediator.ports;
  if (!jobs || outbox) return;
  throw new UseCaseError(
    'missing_port',
    `work() records ${typeOf(job)}'s life in the bound JobStore, whose callbacks need an Outbox — load ` +
      'memoryModule() or knexModule(...), or bind TOKENS.Outbox',
  );
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
