// A middleware of your own (docs/middleware.md walks through it): at most `limit` commands per actor in each window,
// placed after policy (a denied actor spends nothing) and before transition (nothing is judged once refused).
import { MIDDLEWARE, failure, withRules, type Middleware } from '../../lib/core/index.js';

/** Options of `rateLimit()`. */
export interface RateLimitOptions {
  /** Commands an actor may send in one window. */
  readonly limit: number;
  /** The window's length, by the mediator's clock (`TOKENS.Clock`). */
  readonly windowMs: number;
}

/** How many actors' windows it keeps before it forgets the ended ones (memory stays bounded). */
const SWEEP_AT = 10_000;

/**
 * Refuses an actor's command past `limit` in a window with `unavailable` (503, transient: idempotency does not store
 * it, so a retry with the same key runs once the window ends). Queries and anonymous sends pass.
 * @example middleware: [validation(), unitOfWork(), audit(), idempotency(), policy(rules), rateLimit({ limit: 5,
 *   windowMs: 1_000 }), transition(guards), publish()]
 */
export function rateLimit({ limit, windowMs }: RateLimitOptions): Middleware {
  const windows = new Map<string, { readonly start: number; count: number }>();
  return withRules(
    async function rateLimit(ctx, next) {
      const actor = ctx.meta.actor?.id;
      if (actor === undefined || ctx.requestClass.kind !== 'command') return next();
      const now = ctx.ports.clock.now();
      let window = windows.get(actor);
      if (!window || now - window.start >= windowMs) {
        if (windows.size >= SWEEP_AT) for (const [id, w] of windows) if (now - w.start >= windowMs) windows.delete(id);
        windows.set(actor, (window = { start: now, count: 0 }));
      }
      if (++window.count > limit) {
        const retryInMs = window.start + windowMs - now;
        return failure({
          kind: 'unavailable',
          message: `${actor} sent more than ${limit} commands in ${windowMs} ms — retry in ${retryInMs} ms`,
        });
      }
      return next();
    },
    { after: [MIDDLEWARE.policy], before: [MIDDLEWARE.transition] },
  );
}
