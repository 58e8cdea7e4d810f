// Idempotency records in memory; completion joins the ambient transaction, claims commit at once.
import { randomUUID } from 'node:crypto';
import { UseCaseError } from '../../lib/errors.js';
import type { Claim, Clock, IdempotencyKey, IdempotencyStore } from '../../lib/ports.js';
import type { Result } from '../../lib/result.js';
import type { MemoryUnitOfWork } from './unit-of-work.js';

interface Row {
  fingerprint: string;
  token: string;
  leaseUntil: number;
  response?: string;
  expiresAt?: number;
}

/** The memory IdempotencyStore. Responses are stored as JSON text, so replays are byte-equal copies. */
export class MemoryIdempotencyStore implements IdempotencyStore {
  readonly #rows = new Map<string, Row>();
  constructor(
    private readonly uow: MemoryUnitOfWork,
    private readonly clock: Clock = Date,
  ) {}

  async claim(id: IdempotencyKey, fingerprint: string, leaseMs: number): Promise<Claim> {
    const now = this.clock.now(),
      name = keyOf(id),
      row = this.#rows.get(name);
    if (row?.response !== undefined && row.expiresAt! > now)
      return { status: 'completed', fingerprint: row.fingerprint, response: JSON.parse(row.response) };
    if (row && row.response === undefined && row.leaseUntil > now)
      return { status: 'in_progress', fingerprint: row.fingerprint };
    const token = randomUUID();
    this.#rows.set(name, { fingerprint, token, leaseUntil: now + leaseMs });
    return { status: 'claimed', token };
  }

  async complete(id: IdempotencyKey, token: string, response: Result<unknown, string>, ttlMs: number): Promise<void> {
    const name = keyOf(id),
      row = this.#rows.get(name);
    if (!row || row.token !== token || row.response !== undefined) throw claimLost(id);
    this.#rows.set(name, {
      fingerprint: row.fingerprint,
      token: row.token,
      leaseUntil: row.leaseUntil,
      response: JSON.stringify(response),
      expiresAt: this.clock.now() + ttlMs,
    });
    this.uow.current()?.onRollback(() => {
      if (this.#rows.get(name)?.token === token) this.#rows.set(name, row);
    });
  }

  async release(id: IdempotencyKey, token: string): Promise<void> {
    const name = keyOf(id),
      row = this.#rows.get(name);
    if (row?.token === token && row.response === undefined) this.#rows.delete(name);
  }

  async reap(): Promise<number> {
    const now = this.clock.now();
    let removed = 0;
    for (const [name, row] of this.#rows) {
      if (row.response !== undefined ? row.expiresAt! <= now : row.leaseUntil <= now) {
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

function claimLost(id: IdempotencyKey): UseCaseError {
  return new UseCaseError(
    'claim_lost',
    `Idempotency claim on "${id.key}" was taken over after its lease expired — raise leaseMs above the slowest handler`,
  );
}
