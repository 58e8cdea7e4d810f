// Idempotency records in memory: claims join the ambient transaction, results are written with its end.
import type { Claim, Clock, IdempotencyKey, IdempotencyStore } from '../../lib/core/ports.js';
import type { Result } from '../../lib/core/result.js';
import type { MemoryUnitOfWork } from './unit-of-work.js';

interface Row {
  readonly fingerprint: string;
  /** JSON text (replays are byte-equal copies); undefined while the claiming transaction runs. */
  readonly response?: string;
  readonly expiresAt?: number;
}

/**
 * The memory IdempotencyStore. Memory transactions run one at a time, so a duplicate waits for the first send at
 * the transaction's lock rather than at the key, and then sees its result: the same outcome as on Postgres.
 */
export class MemoryIdempotencyStore implements IdempotencyStore {
  readonly #rows = new Map<string, Row>();
  constructor(
    private readonly uow: MemoryUnitOfWork,
    private readonly clock: Clock = Date,
  ) {}

  async claim(id: IdempotencyKey, fingerprint: string): Promise<Claim> {
    const name = keyOf(id),
      row = this.#rows.get(name);
    if (this.#replays(row))
      return { status: 'completed', fingerprint: row.fingerprint, response: JSON.parse(row.response) };
    if (row && row.response === undefined) return { status: 'in_progress' };
    this.#rows.set(name, { fingerprint });
    this.uow.current()?.onRollback(() => (row ? this.#rows.set(name, row) : this.#rows.delete(name)));
    return { status: 'claimed' };
  }

  async complete(id: IdempotencyKey, fingerprint: string, response: Result<unknown, string>, ttlMs: number) {
    const name = keyOf(id),
      text = JSON.stringify(response);
    this.uow.defer(() => {
      if (this.#replays(this.#rows.get(name))) return; // another send stored its result meanwhile: it stays
      this.#rows.set(name, { fingerprint, response: text, expiresAt: this.clock.now() + ttlMs });
    }, !response.ok);
  }

  /** Whether a row holds a result that has not expired. */
  #replays(row: Row | undefined): row is Row & { response: string } {
    return row?.response !== undefined && row.expiresAt! > this.clock.now();
  }

  async reap(): Promise<number> {
    const now = this.clock.now();
    let removed = 0;
    for (const [name, row] of this.#rows) {
      if (row.response !== undefined && row.expiresAt! <= now) {
        this.#rows.delete(name);
        removed++;
      }
    }
    return removed;
  }
}

function keyOf(id: IdempotencyKey): string {
  return `${id.scope}\u0000${id.key}`;
}
