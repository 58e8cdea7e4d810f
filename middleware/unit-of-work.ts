// The commit boundary: one transaction per send (a savepoint when nested), retried on serialization failures.
import type { Context } from '../lib/core/context.js';
import { withRules, type Middleware, type Next } from '../lib/core/middleware.js';
import { MIDDLEWARE } from '../lib/core/names.js';
import type { UnitOfWork } from '../lib/core/ports.js';
import { failure, type AnyResult, type Fail } from '../lib/core/result.js';

const UNAVAILABLE = failure({
  kind: 'unavailable',
  message: 'The database is unavailable; nothing was committed — retry later',
});

const isOk = (result: AnyResult) => result.ok;

/** What an exception of the outermost transaction resolves to: `unavailable`, a refused value, or none (it throws). */
function failureOf(uow: UnitOfWork, error: unknown): Fail<never> | undefined {
  if (uow.isUnavailable(error)) return UNAVAILABLE;
  const issue = uow.refusedValue?.(error);
  return issue && failure({ kind: 'validation', message: issue.message, issues: [issue] });
}

/** The inner stack, then the `beforeCommit` hooks of a success, inside the transaction. */
async function inTransaction(ctx: Context, next: Next): Promise<AnyResult> {
  const result = await next();
  if (result.ok) await ctx.runHooks('beforeCommit', result);
  return result;
}

/** Options of `unitOfWork()`. */
export interface UnitOfWorkOptions {
  /** Attempts for serialization failures and deadlocks (each re-runs the stack inside). Default 3. */
  readonly maxAttempts?: number;
  /** Where errors of afterCommit/afterRollback hooks go (the outcome is already decided). Default: the Logger. */
  readonly onHookError?: (error: unknown) => void;
}

/**
 * Runs the rest of the stack in one transaction. A success commits, together with the outcome records the inner
 * middleware deferred (audit, idempotency, outbox); a failure or an exception rolls back, and only the records of
 * the failure are written after it. Serialization failures and deadlocks re-run the whole attempt — the one place
 * that retries. A lost database resolves to `unavailable`, a value the database refused (out of range, too long)
 * to `validation`; other exceptions propagate. Then `afterCommit` / `afterRollback` hooks run.
 * @example middleware: [validation(), unitOfWork({ maxAttempts: 5 }), audit(), idempotency(), policy(rules), publish()]
 */
export function unitOfWork(options: UnitOfWorkOptions = {}): Middleware {
  const { maxAttempts = 3 } = options;
  return withRules(
    async function unitOfWork(ctx, next) {
      const uow = ctx.ports.unitOfWork!;
      const onHookError =
        options.onHookError ??
        ((error: unknown) =>
          ctx.ports.logger.error('a commit hook failed; the outcome stands', {
            type: ctx.type,
            requestId: ctx.meta.requestId,
            error,
          }));
      const mark = ctx.hookMark(); // hooks registered outside this unit of work survive its retries
      for (let attempt = 1; ; attempt++) {
        ctx.attempts = attempt;
        let result: AnyResult;
        try {
          result = await uow.transaction(() => inTransaction(ctx, next), isOk);
        } catch (error) {
          if (!ctx.parent && attempt < maxAttempts && uow.isRetryable(error)) {
            ctx.reset(mark);
            continue;
          }
          const resolved = ctx.parent ? undefined : failureOf(uow, error);
          await ctx.runHooks('afterRollback', resolved).catch(onHookError);
          if (resolved) return resolved;
          throw error;
        }
        // The outcome is decided: a failing hook is reported, never turned into a rollback or a retry.
        const done = result;
        if (!done.ok) await ctx.runHooks('afterRollback', done).catch(onHookError);
        else if (ctx.parent)
          ctx.parent.afterCommit(() => ctx.runHooks('afterCommit', done)); // at the outermost commit
        else await ctx.runHooks('afterCommit', done).catch(onHookError);
        return done;
      }
    },
    { reentrant: true, after: [MIDDLEWARE.validation], ports: ['unitOfWork'] },
  );
}
