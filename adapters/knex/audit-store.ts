// The audit log in Postgres: each append locks its tenant's head row, so the chain never forks.
import { chainAfter } from '../../lib/audit-chain.js';
import type { AuditEntry, AuditRecord, AuditStore } from '../../lib/ports.js';
import type { Knex } from 'knex';
import type { KnexUnitOfWork } from './unit-of-work.js';

interface Row {
  tenant: string; seq: number; id: string; at: Date | string; actor: string | null; type: string; request_id: string;
  outcome: AuditRecord['outcome']; code: string | null; replayed: boolean | null; payload: unknown; prev_hash: string; hash: string;
}

/** The knex AuditStore. */
export class KnexAuditStore implements AuditStore {
  constructor(private readonly uow: KnexUnitOfWork, private readonly table: string, private readonly heads: string) {}

  async append(entry: AuditEntry): Promise<AuditRecord> {
    // Success records ride in the business transaction; failure records (no unit of work active) get their own.
    return this.uow.active() ? this.#append(await this.uow.db(), entry) : this.uow.knex.transaction((trx) => this.#append(trx, entry));
  }

  async list(query: { tenant?: string; limit?: number; order?: 'asc' | 'desc' } = {}): Promise<AuditRecord[]> {
    const db = await this.uow.db();
    const q = db<Row>(this.table).orderBy('position', query.order ?? 'asc');
    if (query.tenant !== undefined) q.where({ tenant: query.tenant });
    if (query.limit !== undefined) q.limit(query.limit);
    return (await q).map(toRecord);
  }

  async #append(db: Knex | Knex.Transaction, entry: AuditEntry): Promise<AuditRecord> {
    // Two round trips: bumping the head locks it until commit and returns the previous hash (unchanged by the bump);
    // then one statement inserts the record and moves the head's hash on.
    const { rows: [head] } = await db.raw(
      `INSERT INTO ?? AS h (tenant, seq, hash) VALUES (?, 1, '') ON CONFLICT (tenant) DO UPDATE SET seq = h.seq + 1 RETURNING seq, hash`,
      [this.heads, entry.tenant]);
    const record = chainAfter({ seq: Number(head.seq) - 1, hash: head.hash }, entry);
    await db.raw(
      `WITH record AS (INSERT INTO ?? (tenant, seq, id, at, actor, type, request_id, outcome, code, replayed, payload, prev_hash, hash)
                       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?::jsonb, ?, ?))
       UPDATE ?? SET hash = ? WHERE tenant = ?`,
      [this.table, record.tenant, record.seq, record.id, record.at, record.actor, record.type, record.requestId, record.outcome,
        record.code ?? null, record.replayed ?? null, JSON.stringify(record.payload ?? null), record.prevHash, record.hash,
        this.heads, record.hash, record.tenant]);
    return record;
  }
}

function toRecord(row: Row): AuditRecord {
  const record: Record<string, unknown> = {
    id: row.id, at: new Date(row.at).toISOString(), tenant: row.tenant, actor: row.actor, type: row.type,
    requestId: row.request_id, outcome: row.outcome, payload: row.payload, seq: Number(row.seq), prevHash: row.prev_hash, hash: row.hash,
  };
  if (row.code !== null) record.code = row.code;
  if (row.replayed !== null) record.replayed = row.replayed;
  return record as unknown as AuditRecord;
}
