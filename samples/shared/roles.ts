// Role checks for policy rules.
import type { Context } from '../../lib/core/index.js';

/** The sample's roles (sent in the `X-Roles` header; `psp` is the payment provider's webhook, set by the service). */
export type Role = 'clerk' | 'manager' | 'psp';

/**
 * True when the acting user has at least one of `roles`.
 * @example rule(MoveInventory, (ctx) => hasAnyRole(ctx, 'clerk', 'manager'))
 */
export function hasAnyRole(ctx: Context, ...roles: readonly Role[]): boolean {
  const held = ctx.meta.actor?.roles ?? [];
  return roles.some((role) => held.includes(role));
}

/** The acting user's id, if any. */
export function actorId(ctx: Context): string | undefined {
  return ctx.meta.actor?.id;
}
