// The commit hooks of one send: registered by middleware, run by the unit of work, rewound when an attempt retries.
import type { AnyResult } from './context.js';

/** When a hook runs. */
export type Phase = 'beforeCommit' | 'afterCommit' | 'afterRollback';
/** A commit hook; it gets the result being committed (none after a rollback caused by an exception). */
export type Hook = (result: AnyResult | undefined) => unknown;
type Slot = Phase | 'beforeCommitLast';

/** Hooks in registration order; `last` beforeCommit hooks run after the others. */
export class CommitHooks {
  readonly #slots: Record<Slot, Hook[]> = {
    beforeCommit: [],
    beforeCommitLast: [],
    afterCommit: [],
    afterRollback: [],
  };

  add(phase: Phase, hook: Hook, last = false): void {
    this.#slots[last && phase === 'beforeCommit' ? 'beforeCommitLast' : phase].push(hook);
  }

  async run(phase: Phase, result: AnyResult | undefined): Promise<void> {
    await runAll(this.#slots[phase], result);
    if (phase === 'beforeCommit') await runAll(this.#slots.beforeCommitLast, result);
  }

  /** How many hooks each slot holds now. */
  mark(): Readonly<Record<Slot, number>> {
    const s = this.#slots;
    return {
      beforeCommit: s.beforeCommit.length,
      beforeCommitLast: s.beforeCommitLast.length,
      afterCommit: s.afterCommit.length,
      afterRollback: s.afterRollback.length,
    };
  }

  /** Drops the hooks registered since `mark`. */
  rewind(mark: Readonly<Record<Slot, number>>): void {
    for (const slot of Object.keys(mark) as Slot[]) this.#slots[slot].length = mark[slot];
  }
}

async function runAll(hooks: readonly Hook[], result: AnyResult | undefined): Promise<void> {
  for (const hook of hooks) {
    const done = hook(result);
    // eslint-disable-next-line @typescript-eslint/await-thenable -- a hook may return a promise or nothing
    if (done !== undefined) await done; // a hook that returned nothing costs no microtask turn
  }
}
