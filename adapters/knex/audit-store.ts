// The audit log in Postgres: each append locks its tenant's head row, so the chain never forks.
import { chainParts, GENESIS_HASH } from '../../lib/audit-chain.js';
import type { AuditEntry, AuditRecord, AuditStore } from '../../lib/ports.js';
import type { KnexUnitOfWork } from './unit-of-work.js';

interface Row {
  tenant: string; seq: number; id: string; at: Date | string; actor: string | null; type: string; request_id: string;
  outcome: AuditRecord['outcome']; code: string | null; replayed: boolean | null; payload: unknown; prev_hash: string; hash: string;
}

/** The knex AuditStore. */
export class KnexAuditStore implements AuditStore {
  constructor(private readonly uow: KnexUnitOfWork, private readonly table: string, private readonly heads: string) {}

  async list(query: { tenant?: string; limit?: number; order?: 'asc' | 'desc' } = {}): Promise<AuditRecord[]> {
    const db = await this.uow.db();
    const q = db<Row>(this.table).orderBy('position', query.order ?? 'asc');
    if (query.tenant !== undefined) q.where({ tenant: query.tenant });
    if (query.limit !== undefined) q.limit(query.limit);
    return (await q).map(toRecord);
  }

  async append(entry: AuditEntry): Promise<AuditRecord> {
    // Success records ride in the business transaction (uow.db() is it); failure records are written with no unit
    // of work active, and being one statement they need no transaction of their own.
    const db = await this.uow.db();
    // One round trip: the head bump numbers the record and computes its hash in SQL (sha256 over the previous hash
    // and the canonical JSON split around seq, see chainParts), keeping the previous hash in the head row so the
    // insert can read it; the bump locks the head until commit, so the chain never forks.
    const [before, after] = chainParts(entry);
    const { rows: [row] } = await db.raw(
      `WITH head AS (
         INSERT INTO ?? AS h (tenant, seq, prev_hash, hash) VALUES (?, 1, ?, encode(sha256(convert_to(? || ? || '1' || ?, 'UTF8')), 'hex'))
         ON CONFLICT (tenant) DO UPDATE SET seq = h.seq + 1, prev_hash = h.hash,
           hash = encode(sha256(convert_to(h.hash || ? || (h.seq + 1)::text || ?, 'UTF8')), 'hex')
         RETURNING seq, prev_hash, hash)
       INSERT INTO ?? (tenant, seq, id, at, actor, type, request_id, outcome, code, replayed, payload, prev_hash, hash)
       SELECT ?, head.seq, ?, ?, ?, ?, ?, ?, ?, ?, ?::jsonb, head.prev_hash, head.hash FROM head
       RETURNING seq, prev_hash, hash`,
      [this.heads, entry.tenant, GENESIS_HASH, GENESIS_HASH, before, after, before, after,
        this.table, entry.tenant, entry.id, entry.at, entry.actor, entry.type, entry.requestId, entry.outcome,
        entry.code ?? null, entry.replayed ?? null, JSON.stringify(entry.payload ?? null)]);
    return Object.assign({}, entry, { seq: Number(row.seq), prevHash: row.prev_hash as string, hash: row.hash as string });
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
