// What the policy() middleware asks: an authorization decision about one send.
import type { Context } from './context.js';

/** A decision: `true` allows; `false` or `{ allow: false, reason }` denies. */
export type Decision = boolean | { readonly allow: boolean; readonly reason?: string };

/**
 * An authorization engine (in place of per-type rules). A throwing engine denies.
 * @example policy({ authorize: (ctx) => engine.check(ctx.meta.actor, ctx.type, ctx.request) })
 */
export interface Policy {
  authorize(ctx: Context): Decision | Promise<Decision>;
}
