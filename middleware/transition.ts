// Lifecycle guard: an action from a state it is not allowed from is `invalid_transition` and changes nothing.
import type { Context } from '../lib/core/context.js';
import { withRules, type Middleware } from '../lib/core/middleware.js';
import { MIDDLEWARE } from '../lib/core/names.js';
import type { StateMachine } from '../lib/core/ports.js';
import type { AnyRequest, RequestClass } from '../lib/core/request.js';
import { failure } from '../lib/core/result.js';

/** Which action of which state machine a request type performs, and how to read the current state. */
export interface TransitionGuard<C extends AnyRequest = any, S = any> {
  readonly type: RequestClass<C>;
  readonly machine: StateMachine;
  readonly action: string;
  /** The current state from the loaded state; `undefined` skips the check (the handler reports not found). */
  readonly current: (state: S, ctx: Context<C, S>) => string | undefined;
}

/**
 * Binds a request type to a lifecycle action.
 * @example guard(PayOrder, orders, 'pay', (order: Order | undefined) => order?.status)
 */
export function guard<C extends AnyRequest, S>(
  type: RequestClass<C>,
  machine: StateMachine,
  action: string,
  current: (state: S, ctx: Context<C, S>) => string | undefined,
): TransitionGuard<C, S> {
  return { type, machine, action, current };
}

/**
 * Checks declared lifecycles against the state loaded in the transaction before the handler runs.
 * @example
 * transition([guard(PayOrder, orders, 'pay', (o) => o?.status), guard(ShipOrder, orders, 'ship', (o) => o?.status)])
 */
export function transition(guards: readonly TransitionGuard[]): Middleware {
  const byType = new Map(guards.map((g) => [g.type, g]));
  return withRules(
    async function transition(ctx, next) {
      const bound = byType.get(ctx.requestClass);
      if (!bound) return next();
      const from = bound.current(await ctx.load(), ctx);
      if (from === undefined) return next();
      const verdict = bound.machine.check(from, bound.action);
      if (verdict.ok) return next();
      return failure({
        kind: 'invalid_transition',
        from,
        to: verdict.to,
        allowed: verdict.allowed,
        message: `Cannot ${bound.action} from "${from}" — allowed from: ${verdict.allowed.join(', ')}`,
      });
    },
    { inside: [MIDDLEWARE.unitOfWork], after: [MIDDLEWARE.policy], stream: false },
  );
}
