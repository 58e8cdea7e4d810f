// Idempotency keys in Postgres: one atomic upsert claims (or takes over) a key; completion is fenced by token.
import { randomUUID } from 'node:crypto';
import { UseCaseError } from '../../lib/errors.js';
import type { Claim, Clock, IdempotencyKey, IdempotencyStore } from '../../lib/ports.js';
import type { Result } from '../../lib/result.js';
import { deleteInBatches } from './purge.js';
import type { KnexUnitOfWork } from './unit-of-work.js';

interface Row {
  fingerprint: string;
  token: string;
  response: string | null;
  lease_until: string | number;
  expires_at: string | number | null;
}

/** The knex IdempotencyStore. Times come from the Clock port, so leases and TTLs are testable. */
export class KnexIdempotencyStore implements IdempotencyStore {
  constructor(
    private readonly uow: KnexUnitOfWork,
    private readonly table: string,
    private readonly clock: Clock = Date,
  ) {}

  async claim(id: IdempotencyKey, fingerprint: string, leaseMs: number): Promise<Claim> {
    const db = await this.uow.db();
    // A row can vanish between the upsert and the read (the reaper); then claim again, never answer "fresh" without
    // a row.
    for (let attempt = 0; attempt < 5; attempt++) {
      const now = this.clock.now(),
        token = randomUUID();
      const taken = await db.raw(
        `INSERT INTO ?? AS t (scope, key, fingerprint, token, lease_until) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (scope, key) DO UPDATE SET fingerprint = excluded.fingerprint, token = excluded.token,
           lease_until = excluded.lease_until, response = NULL, expires_at = NULL, created_at = now()
         WHERE (t.response IS NOT NULL AND t.expires_at <= ?) OR (t.response IS NULL AND t.lease_until <= ?)
         RETURNING token`,
        [this.table, id.scope, id.key, fingerprint, token, now + leaseMs, now, now],
      );
      if (taken.rows.length > 0) return { status: 'claimed', token };
      const row: Row | undefined = await db(this.table).where({ scope: id.scope, key: id.key }).first();
      if (!row) continue;
      if (row.response !== null && Number(row.expires_at) > now) {
        return { status: 'completed', fingerprint: row.fingerprint, response: JSON.parse(row.response) };
      }
      if (row.response === null && Number(row.lease_until) > now) {
        return { status: 'in_progress', fingerprint: row.fingerprint };
      }
    }
    throw new Error(`Could not claim idempotency key "${id.key}" after 5 attempts (it keeps changing hands)`);
  }

  async complete(id: IdempotencyKey, token: string, response: Result<unknown, string>, ttlMs: number): Promise<void> {
    const db = await this.uow.db();
    const updated = await db(this.table)
      .where({ scope: id.scope, key: id.key, token })
      .whereNull('response')
      .update({ response: JSON.stringify(response), expires_at: this.clock.now() + ttlMs });
    if (updated === 0) {
      throw new UseCaseError(
        'claim_lost',
        `Idempotency claim on "${id.key}" was taken over after its lease expired — raise leaseMs above the slowest ` +
          'handler',
      );
    }
  }

  async release(id: IdempotencyKey, token: string): Promise<void> {
    const db = await this.uow.db();
    await db(this.table).where({ scope: id.scope, key: id.key, token }).whereNull('response').delete();
  }

  /** Deletes expired records and claims whose lease ran out, in batches; returns how many. */
  async reap(): Promise<number> {
    const now = this.clock.now();
    return deleteInBatches(
      await this.uow.db(),
      this.table,
      '(response IS NOT NULL AND expires_at <= ?) OR (response IS NULL AND lease_until <= ?)',
      [now, now],
    );
  }
}
