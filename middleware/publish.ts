// Transactional outbox: staged events and jobs are written in the business transaction and leave after commit.
import { withRules, type Middleware } from '../lib/middleware.js';

/**
 * Enables `ctx.publish` / `ctx.enqueue`. Staged messages are written to the outbox just before commit (dropped on
 * rollback), and the relay is woken after the outermost commit.
 * @example middleware: [..., unitOfWork(), policy(rules), transition(guards), publish()]
 */
export function publish(): Middleware {
  return withRules(
    async function publish(ctx, next) {
      const staged = (ctx.outbox = []);
      ctx.beforeCommit(() => (staged.length > 0 ? ctx.ports.outbox!.add(staged) : undefined));
      ctx.afterCommit(() => {
        if (staged.length > 0) ctx.ports.relay?.wake();
      });
      return next();
    },
    { inside: ['unitOfWork'], ports: ['outbox'] },
  );
}
