// Transactional outbox: staged events and jobs are written in the business transaction and leave after commit.
import { jobQueueOf, queuedJob } from '../lib/jobs/jobs.js';
import { withRules, type Middleware } from '../lib/core/middleware.js';
import type { OutboxMessage } from '../lib/core/ports.js';

/**
 * Enables `ctx.publish` / `ctx.enqueue`. A success writes the staged messages to the outbox with its commit (a
 * failure drops them) — and its jobs, `queued`, to the JobStore when one is bound — and the relay is woken after the
 * outermost commit.
 * @example middleware: [..., unitOfWork(), policy(rules), transition(guards), publish()]
 */
export function publish(): Middleware {
  return withRules(
    async function publish(ctx, next) {
      const staged: OutboxMessage[] = (ctx.outbox = []);
      const result = await next();
      if (result.ok && staged.length > 0) {
        await ctx.ports.outbox!.add(staged);
        const jobs = ctx.ports.jobs && staged.filter((message) => message.kind === 'job');
        if (jobs?.length) await ctx.ports.jobs!.add(jobs.map((job) => queuedJob(job, jobQueueOf(ctx.ports, job.type))));
        ctx.afterCommit(() => ctx.ports.relay?.wake());
      }
      return result;
    },
    { inside: ['unitOfWork'], ports: ['outbox'] },
  );
}
