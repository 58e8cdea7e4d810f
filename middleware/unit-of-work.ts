// The commit boundary: one transaction per send (a savepoint when nested), retried on serialization failures.
import type { AnyResult } from '../lib/context.js';
import { withRules, type Middleware } from '../lib/middleware.js';
import { failure } from '../lib/result.js';

/** Options of `unitOfWork()`. */
export interface UnitOfWorkOptions {
  /** Attempts for serialization failures and deadlocks (each re-runs load and checks). Default 3. */
  readonly maxAttempts?: number;
  /** Where errors of afterCommit/afterRollback hooks go (the outcome is already decided). Default console.error. */
  readonly onHookError?: (error: unknown) => void;
}

/**
 * Runs the rest of the stack in a transaction: commits a successful result (after the `beforeCommit` hooks, in
 * the transaction), rolls back a failure or an exception, then runs `afterCommit`/`afterRollback` hooks.
 * @example middleware: [validation(), audit(), idempotency(), unitOfWork({ maxAttempts: 5 }), policy(rules), publish()]
 */
export function unitOfWork(options: UnitOfWorkOptions = {}): Middleware {
  const {
    maxAttempts = 3,
    onHookError = (error: unknown) => console.error('usecasecore: a commit hook failed', error),
  } = options;
  return withRules(
    async function unitOfWork(ctx, next) {
      const uow = ctx.ports.unitOfWork!;
      const mark = ctx.mark();
      let result: AnyResult;
      for (let attempt = 1; ; attempt++) {
        try {
          result = await uow.transaction(
            async () => {
              const r = await next();
              if (r.ok) await ctx.runHooks('beforeCommit', r);
              return r;
            },
            (r) => r.ok,
          );
          break;
        } catch (error) {
          if (!ctx.parent && attempt < maxAttempts && uow.isRetryable(error)) {
            ctx.rewind(mark);
            continue;
          }
          await ctx.runHooks('afterRollback', undefined).catch(onHookError);
          if (!ctx.parent && uow.isUnavailable(error)) {
            return failure({
              kind: 'unavailable',
              message: 'The database is unavailable; nothing was committed — retry later',
            });
          }
          throw error;
        }
      }
      // The outcome is decided: a failing hook is reported, never turned into a rollback or a retry of committed work.
      const done = result;
      if (!done.ok) await ctx.runHooks('afterRollback', done).catch(onHookError);
      else if (ctx.parent)
        ctx.parent.afterCommit(() => ctx.runHooks('afterCommit', done)); // leave at the outermost commit
      else await ctx.runHooks('afterCommit', done).catch(onHookError);
      return done;
    },
    { reentrant: true, after: ['validation'], ports: ['unitOfWork'] },
  );
}
