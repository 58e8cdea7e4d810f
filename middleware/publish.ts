// Transactional outbox: staged events and jobs are written in the business transaction and leave after commit.
import { withRules, type Middleware } from '../lib/core/middleware.js';
import { MIDDLEWARE } from '../lib/core/names.js';
import { queuedJob, Staging } from '../lib/core/staging.js';

/**
 * Enables `ctx.publish` / `ctx.enqueue` (it installs the send's Staging). A success writes the staged messages to
 * the outbox with its commit (a failure drops them) — and its jobs, `queued`, to the JobStore when one is bound —
 * and the relay is woken after the outermost commit.
 * @example middleware: [..., unitOfWork(), policy(rules), transition(guards), publish()]
 */
export function publish(): Middleware {
  return withRules(
    async function publish(ctx, next) {
      const staging = (ctx.staging = new Staging(ctx));
      const result = await next();
      const staged = staging.messages;
      if (result.ok && staged.length > 0) {
        const { outbox, jobs, queues, relay } = ctx.ports;
        await outbox!.add(staged);
        if (jobs) {
          const records = staged.filter((m) => m.kind === 'job').map((job) => queuedJob(job, queues.job(job.type)));
          if (records.length > 0) await jobs.add(records);
        }
        ctx.afterCommit(() => relay?.wake());
      }
      return result;
    },
    { inside: [MIDDLEWARE.unitOfWork], ports: ['outbox'], stream: false },
  );
}
