// Transactional outbox: staged events and jobs are written in the business transaction and leave after commit.
import { withRules, type Middleware } from '../lib/middleware.js';

/**
 * Enables `ctx.publish` / `ctx.enqueue`. A success writes the staged messages to the outbox with its commit (a
 * failure drops them), and the relay is woken after the outermost commit.
 * @example middleware: [..., unitOfWork(), policy(rules), transition(guards), publish()]
 */
export function publish(): Middleware {
  return withRules(
    async function publish(ctx, next) {
      const staged = (ctx.outbox = []);
      const result = await next();
      if (result.ok && staged.length > 0) {
        await ctx.ports.outbox!.add(staged);
        ctx.afterCommit(() => ctx.ports.relay?.wake());
      }
      return result;
    },
    { inside: ['unitOfWork'], ports: ['outbox'] },
  );
}
