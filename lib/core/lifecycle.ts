// The built-in state machine: declared actions with the states they may start from.
import { UseCaseError } from './errors.js';
import type { StateMachine } from './ports.js';

/** One action of a lifecycle. */
export interface LifecycleAction<S extends string> {
  readonly from: readonly S[];
  readonly to: S;
}

/**
 * Declares a lifecycle. `check(from, action)` says where the action leads, or which states it is allowed from.
 * @example
 * const orders = lifecycle({
 *   pay: { from: ['placed'], to: 'paid' }, cancel: { from: ['placed', 'paid'], to: 'cancelled' },
 * });
 */
export function lifecycle<S extends string, A extends string>(
  actions: Readonly<Record<A, LifecycleAction<S>>>,
): StateMachine & { readonly actions: Readonly<Record<A, LifecycleAction<S>>> } {
  return {
    actions,
    check(from, action) {
      const declared = (actions as Record<string, LifecycleAction<S> | undefined>)[action];
      if (!declared)
        throw new UseCaseError(
          'misuse',
          `Lifecycle has no action "${action}" — declare it in lifecycle({ ${action}: { from: [...], to: ... } })`,
        );
      return (declared.from as readonly string[]).includes(from)
        ? { ok: true, to: declared.to }
        : { ok: false, to: declared.to, allowed: declared.from };
    },
  };
}
