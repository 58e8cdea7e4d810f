// Idempotency keys in Postgres: claimed in the business transaction, so a claim commits or vanishes with it.
import type { Claim, Clock, IdempotencyKey, IdempotencyStore } from '../../lib/core/ports.js';
import type { Result } from '../../lib/core/result.js';
import { deleteInBatches } from './purge.js';
import { prepared, type KnexUnitOfWork } from './unit-of-work.js';

/** Claims that keep changing hands (a reaper deleting the row between the claim and the read) before giving up. */
const CLAIM_ATTEMPTS = 5;
const LOCK_NOT_AVAILABLE = '55P03';

/**
 * The knex IdempotencyStore. A duplicate's claim blocks on the key's row until the first send's transaction ends,
 * bounded by `lock_timeout`; times come from the Clock port, so TTLs are testable.
 */
export class KnexIdempotencyStore implements IdempotencyStore {
  readonly #claim: string;
  readonly #read: string;
  readonly #complete: string;

  constructor(
    private readonly uow: KnexUnitOfWork,
    private readonly table: string,
    private readonly clock: Clock = Date,
  ) {
    const t = uow.knex.raw('??', [table]).toQuery();
    // One round trip: lock_timeout bounds this statement's wait only (set before the insert, restored after it).
    this.#claim = `WITH cfg AS MATERIALIZED (
        SELECT current_setting('lock_timeout') AS was, set_config('lock_timeout', ?, true) AS wait),
      claimed AS (
        INSERT INTO ${t} AS t (scope, key, fingerprint) SELECT ?, ?, ? FROM cfg
        ON CONFLICT (scope, key) DO UPDATE SET fingerprint = excluded.fingerprint, response = NULL, expires_at = NULL
        WHERE t.response IS NULL OR t.expires_at <= ? RETURNING 1)
      SELECT (SELECT count(*) FROM claimed)::int AS claimed, set_config('lock_timeout', (SELECT was FROM cfg), true)`;
    this.#read = `SELECT fingerprint, response, expires_at FROM ${t} WHERE scope = ? AND key = ?`;
    this.#complete = `INSERT INTO ${t} AS t (scope, key, fingerprint, response, expires_at) VALUES (?, ?, ?, ?, ?)
      ON CONFLICT (scope, key) DO UPDATE SET fingerprint = excluded.fingerprint, response = excluded.response,
        expires_at = excluded.expires_at
      WHERE t.response IS NULL OR t.expires_at <= ?`;
  }

  async claim(id: IdempotencyKey, fingerprint: string, waitMs: number): Promise<Claim> {
    const db = await this.uow.db();
    for (let attempt = 0; attempt < CLAIM_ATTEMPTS; attempt++) {
      const now = this.clock.now();
      try {
        const { rows } = await prepared(db, this.#claim, [
          `${Math.max(1, Math.round(waitMs))}ms`,
          id.scope,
          id.key,
          fingerprint,
          now,
        ]);
        if (rows[0].claimed > 0) return { status: 'claimed' };
      } catch (error) {
        if ((error as { code?: string }).code === LOCK_NOT_AVAILABLE) return { status: 'in_progress' };
        throw error;
      }
      const { rows } = await prepared(db, this.#read, [id.scope, id.key]);
      const row = rows[0] as { fingerprint: string; response: string; expires_at: string | number } | undefined;
      if (row) return { status: 'completed', fingerprint: row.fingerprint, response: JSON.parse(row.response) };
    }
    throw new Error(
      `Could not claim idempotency key "${id.key}" after ${CLAIM_ATTEMPTS} attempts (it keeps changing hands)`,
    );
  }

  async complete(id: IdempotencyKey, fingerprint: string, response: Result<unknown, string>, ttlMs: number) {
    const now = this.clock.now();
    const bindings = [id.scope, id.key, fingerprint, JSON.stringify(response), now + ttlMs, now];
    await this.uow.defer(this.#complete, bindings, !response.ok);
  }

  /** Deletes expired records, in batches; returns how many. */
  async reap(): Promise<number> {
    // A committed row without a result is a claim left by an older version (claims now commit with their result).
    return deleteInBatches(
      this.uow.knex,
      this.table,
      '(response IS NOT NULL AND expires_at <= ?) OR response IS NULL',
      [this.clock.now()],
    );
  }
}
