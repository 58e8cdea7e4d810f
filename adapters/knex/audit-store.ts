// The audit log in Postgres: each append locks its tenant's head row, so the chain never forks.
import type { Knex } from 'knex';
import { chainHash, chainParts, GENESIS_HASH } from '../../lib/audit-chain.js';
import { UseCaseError } from '../../lib/errors.js';
import type { AuditEntry, AuditRecord, AuditStore } from '../../lib/ports.js';
import type { KnexUnitOfWork } from './unit-of-work.js';

interface Row {
  tenant: string;
  seq: number;
  id: string;
  at: Date | string;
  actor: string | null;
  type: string;
  request_id: string;
  outcome: AuditRecord['outcome'];
  code: string | null;
  replayed: boolean | null;
  payload: unknown;
  prev_hash: string;
  hash: string;
}

/** The first record of a tenant's chain that fails the walk (`id` is null when the record is gone). */
export interface AuditProblem {
  readonly tenant: string;
  readonly seq: number;
  readonly id: string | null;
  readonly reason: string;
}

/** What `KnexAuditStore.verify()` found: the first problem of each broken tenant. */
export interface AuditVerification {
  readonly ok: boolean;
  readonly tenants: number;
  readonly records: number;
  readonly problems: readonly AuditProblem[];
}

/** `verify` reads each tenant in one consistent snapshot, changing nothing. */
const SNAPSHOT: Knex.TransactionConfig = { isolationLevel: 'repeatable read', readOnly: true };

/** The knex AuditStore. */
export class KnexAuditStore implements AuditStore {
  constructor(
    private readonly uow: KnexUnitOfWork,
    private readonly table: string,
    private readonly heads: string,
  ) {}

  async list(query: { tenant?: string; limit?: number; order?: 'asc' | 'desc' } = {}): Promise<AuditRecord[]> {
    const db = await this.uow.db();
    const q = db<Row>(this.table).orderBy('position', query.order ?? 'asc');
    if (query.tenant !== undefined) q.where({ tenant: query.tenant });
    if (query.limit !== undefined) q.limit(query.limit);
    return (await q).map(toRecord);
  }

  /**
   * Walks each tenant's chain by seq, a page at a time (never a whole chain in memory), with the rules of
   * `verifyAuditChain`: seqs 1, 2, 3… without gaps, each prevHash the previous hash, each hash `chainHash` of its
   * record. The last record must also match the tenant's head row, so a deleted last record is caught too. Each
   * tenant is read in one read-only repeatable-read transaction: records appended while it walks are not seen (the
   * head bump and its record commit together), so a busy chain is never reported broken.
   * @example const { ok, problems } = await store.verify({ tenant: 't1' });
   */
  async verify(options: { readonly tenant?: string; readonly pageSize?: number } = {}): Promise<AuditVerification> {
    const pageSize = options.pageSize ?? 1_000;
    if (!Number.isInteger(pageSize) || pageSize < 1) {
      throw new UseCaseError('misuse', `verify({ pageSize }) must be a whole number ≥ 1, got ${pageSize}`);
    }
    const tenants: string[] =
      options.tenant !== undefined
        ? [options.tenant]
        : (
            await this.uow.knex.raw(`SELECT tenant FROM ?? UNION SELECT tenant FROM ?? ORDER BY tenant`, [
              this.heads,
              this.table,
            ])
          ).rows.map((r: { tenant: string }) => r.tenant);
    const problems: AuditProblem[] = [];
    let records = 0;
    for (const tenant of tenants) {
      const walked = await this.uow.knex.transaction((trx) => this.#walk(trx, tenant, pageSize), SNAPSHOT);
      records += walked.records;
      if (walked.problem) problems.push(walked.problem);
    }
    return { ok: problems.length === 0, tenants: tenants.length, records, problems };
  }

  /** One tenant's walk in the snapshot `trx`: the records that passed, and the first problem. */
  async #walk(
    trx: Knex.Transaction,
    tenant: string,
    pageSize: number,
  ): Promise<{ records: number; problem?: AuditProblem }> {
    const head: { seq: number; hash: string } | undefined = await trx(this.heads)
      .where({ tenant })
      .first('seq', 'hash');
    const headSeq = Number(head?.seq ?? 0);
    let last: { seq: number; hash: string; id: string | null } = { seq: 0, hash: GENESIS_HASH, id: null };
    let records = 0;
    for (let full = true; full;) {
      const page = await trx<Row>(this.table)
        .where({ tenant })
        .andWhere('seq', '>', last.seq)
        .orderBy('seq')
        .limit(pageSize);
      full = page.length === pageSize;
      for (const record of page.map(toRecord)) {
        const reason = breakIn(record, last, headSeq);
        if (reason) return { records, problem: { tenant, seq: record.seq, id: record.id, reason } };
        last = { seq: record.seq, hash: record.hash, id: record.id };
        records++;
      }
    }
    const at = { tenant, seq: last.seq, id: last.id };
    if (headSeq > last.seq) {
      return {
        records,
        problem:
          last.id === null
            ? {
                tenant,
                seq: 1,
                id: null,
                reason: `the head is at seq ${headSeq} but no record is left: they were deleted`,
              }
            : { ...at, reason: `the head is at seq ${headSeq}: the records after this one were deleted` },
      };
    }
    if (head && head.hash !== last.hash) {
      return { records, problem: { ...at, reason: 'hash does not match the head row (it was edited)' } };
    }
    return { records };
  }

  async append(entry: AuditEntry): Promise<AuditRecord> {
    // Success records ride in the business transaction (uow.db() is it); failure records are written with no unit
    // of work active, and being one statement they need no transaction of their own.
    const db = await this.uow.db();
    // One round trip: the head bump numbers the record and computes its hash in SQL (sha256 over the previous hash
    // and the canonical JSON split around seq, see chainParts), keeping the previous hash in the head row so the
    // insert can read it; the bump locks the head until commit, so the chain never forks.
    const [before, after] = chainParts(entry);
    const {
      rows: [row],
    } = await db.raw(
      `WITH head AS (
         INSERT INTO ?? AS h (tenant, seq, prev_hash, hash)
         VALUES (?, 1, ?, encode(sha256(convert_to(? || ? || '1' || ?, 'UTF8')), 'hex'))
         ON CONFLICT (tenant) DO UPDATE SET seq = h.seq + 1, prev_hash = h.hash,
           hash = encode(sha256(convert_to(h.hash || ? || (h.seq + 1)::text || ?, 'UTF8')), 'hex')
         RETURNING seq, prev_hash, hash)
       INSERT INTO ?? (tenant, seq, id, at, actor, type, request_id, outcome, code, replayed, payload, prev_hash, hash)
       SELECT ?, head.seq, ?, ?, ?, ?, ?, ?, ?, ?, ?::jsonb, head.prev_hash, head.hash FROM head
       RETURNING seq, prev_hash, hash`,
      [
        this.heads,
        entry.tenant,
        GENESIS_HASH,
        GENESIS_HASH,
        before,
        after,
        before,
        after,
        this.table,
        entry.tenant,
        entry.id,
        entry.at,
        entry.actor,
        entry.type,
        entry.requestId,
        entry.outcome,
        entry.code ?? null,
        entry.replayed ?? null,
        JSON.stringify(entry.payload ?? null),
      ],
    );
    return Object.assign({}, entry, {
      seq: Number(row.seq),
      prevHash: row.prev_hash as string,
      hash: row.hash as string,
    });
  }
}

function toRecord(row: Row): AuditRecord {
  const record: Record<string, unknown> = {
    id: row.id,
    at: new Date(row.at).toISOString(),
    tenant: row.tenant,
    actor: row.actor,
    type: row.type,
    requestId: row.request_id,
    outcome: row.outcome,
    payload: row.payload,
    seq: Number(row.seq),
    prevHash: row.prev_hash,
    hash: row.hash,
  };
  if (row.code !== null) record.code = row.code;
  if (row.replayed !== null) record.replayed = row.replayed;
  return record as unknown as AuditRecord;
}

/** Why `record` cannot follow `last` in a chain whose head is at `headSeq` (verifyAuditChain's rules), or undefined. */
function breakIn(record: AuditRecord, last: { seq: number; hash: string }, headSeq: number): string | undefined {
  if (record.seq !== last.seq + 1) return `seq ${last.seq + 1} is missing (a record was removed or reordered)`;
  if (record.prevHash !== last.hash) return 'prevHash does not match the previous record';
  if (record.hash !== chainHash(last.hash, record.seq, record)) return 'hash does not match the record (it was edited)';
  if (record.seq > headSeq) return `the head is at seq ${headSeq}: this record was inserted`;
  return undefined;
}
