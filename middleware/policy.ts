// Authorization, deny by default: a request type with no rule is forbidden, a throwing rule denies.
import type { Context } from '../lib/core/context.js';
import { withRules, type Middleware } from '../lib/core/middleware.js';
import { MIDDLEWARE } from '../lib/core/names.js';
import type { Decision, Policy } from '../lib/core/policy.js';
import { typeOf, type AnyRequest, type RequestClass } from '../lib/core/request.js';
import { failure } from '../lib/core/result.js';

/** One request type's rule. The context can `await ctx.load()` to judge the loaded state. */
export interface PolicyRule<C extends AnyRequest = any> {
  readonly type: RequestClass<C>;
  readonly check: (ctx: Context<C, any>) => Decision | Promise<Decision>;
}

/**
 * A rule for one request type.
 * @example rule(PayOrder, async (ctx) => (await ctx.load()).owner === ctx.meta.actor?.id)
 */
export function rule<C extends AnyRequest>(
  type: RequestClass<C>,
  check: (ctx: Context<C, any>) => Decision | Promise<Decision>,
): PolicyRule<C> {
  return { type, check };
}

/** Makes a request type explicitly public (allowed for anyone, even anonymous). @example everyone(GetInventory) */
export function everyone<C extends AnyRequest>(type: RequestClass<C>): PolicyRule<C> {
  return { type, check: () => true };
}

/**
 * Checks every request against its rule (or a whole engine). Runs inside the unit of work, so rules that read
 * state read it in the transaction that commits.
 * @example policy([rule(MoveInventory, ({ meta }) => hasRole(meta, 'clerk')), everyone(GetInventory)])
 */
export function policy(rules: readonly PolicyRule[] | Policy): Middleware {
  const byType = Array.isArray(rules) ? new Map(rules.map((r: PolicyRule) => [r.type, r.check])) : undefined;
  return withRules(
    async function policy(ctx, next) {
      const check = byType ? byType.get(ctx.requestClass) : (c: Context) => (rules as Policy).authorize(c);
      if (!check)
        return deny(
          `No policy rule for ${ctx.type} (deny by default) — add rule(${ctx.type}, ...) or everyone(${ctx.type})`,
        );
      let decision: Decision;
      try {
        const pending = check(ctx);
        decision = pending instanceof Promise ? await pending : pending;
      } catch (error) {
        // A rule that could not read its state (the database went away, a deadlock) has decided nothing: the unit of
        // work makes that `unavailable` or a retry. A denial would be stored under the key and replayed for its TTL.
        const uow = ctx.ports.unitOfWork;
        if (uow?.isUnavailable(error) || uow?.isRetryable(error)) throw error;
        return deny(`Policy for ${ctx.type} failed, so it denies`);
      }
      if (decision === true || (typeof decision === 'object' && decision.allow === true)) return next();
      return deny(
        typeof decision === 'object' && decision.reason
          ? decision.reason
          : `${ctx.meta.actor?.id ?? 'Anonymous'} may not ${typeOf(ctx.requestClass)}`,
      );
    },
    { after: [MIDDLEWARE.validation, MIDDLEWARE.audit, MIDDLEWARE.idempotency, MIDDLEWARE.unitOfWork] },
  );
}

function deny(message: string) {
  return failure({ kind: 'forbidden', message });
}
