// A job's life around its transaction: taken (running) before it, settled with its commit, callbacks staged with it.
import { dispositionOf } from '../lib/messaging/consume.js';
import { isoTime, type AnyResult } from '../lib/core/context.js';
import { jobFailure, settleJob, settleJobAlone } from '../lib/jobs/jobs.js';
import { withRules, type Middleware } from '../lib/core/middleware.js';

const SKIPPED: AnyResult = { ok: true, value: undefined, replayed: true };

/**
 * For sends that run a job (`meta.job`, set by `work()`): marks the job `running` (a cancelled or settled job does
 * not run: a replayed success), then records its outcome — a success with the job's own commit, a final failure
 * (one a retry would not change) in a transaction of its own after the rollback — together with its `onSuccess` /
 * `onFailure` callback, staged in the outbox in that same transaction. Transient failures leave it `running` for
 * the retry; `work()` settles a dead-lettered job as `dead`.
 * @example middleware: [validation(), jobs(), unitOfWork(), audit(), idempotency(), inbox(), policy(rules), publish()]
 */
export function jobs(): Middleware {
  return withRules(
    async function jobs(ctx, next) {
      const job = ctx.meta.job;
      if (job === undefined) return next();
      const { ports } = ctx;
      const taken = await ports.jobs!.start(job.id, isoTime(ports.clock.now()));
      if (taken !== undefined && taken.state !== 'running') return SKIPPED;
      const attempts = taken?.attempts ?? 1;
      // Registered outside the unit of work: it survives the attempts the unit of work retries.
      ctx.beforeCommit(async (result) => {
        if (!result?.ok || result.replayed) return;
        if (await settleJob(ports, job, { state: 'succeeded', result: result.value }, attempts))
          ctx.afterCommit(() => ports.relay?.wake());
      });
      const result = await next();
      if (result.ok || result.replayed || dispositionOf(result).action !== 'ack') return result;
      await settleJobAlone(ports, job, { state: 'failed', failure: jobFailure(result.failure) }, attempts);
      return result;
    },
    { after: ['validation'], before: ['unitOfWork'], ports: ['jobs', 'unitOfWork', 'outbox'] },
  );
}
