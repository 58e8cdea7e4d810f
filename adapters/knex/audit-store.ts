// The audit log in Postgres: appends insert unchained rows with their commit; `seal()` chains them afterwards.
import type { Knex } from 'knex';
import { chainAfter, chainHash, GENESIS_HASH } from '../../lib/audit/chain.js';
import { UseCaseError } from '../../lib/core/errors.js';
import type { AuditEntry, AuditRecord, AuditStore } from '../../lib/core/ports.js';
import type { KnexUnitOfWork } from './unit-of-work.js';

/** A row of the audit table; seq, prev_hash and hash are null until `seal()` chains it. */
interface Row {
  tenant: string;
  seq: number | null;
  id: string;
  at: Date | string;
  actor: string | null;
  type: string;
  request_id: string;
  outcome: AuditRecord['outcome'];
  code: string | null;
  replayed: boolean | null;
  /** Null for records written before migration 007, and for those without a reason. */
  reason: string | null;
  payload: unknown;
  prev_hash: string | null;
  hash: string | null;
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
  /** Records committed but not sealed yet (`seal()` chains them), not checked. */
  readonly pending: number;
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

  /**
   * Sealed records only (a record joins the list when `seal()` has chained it): a tenant's in seq order, so
   * `verifyAuditChain(await store.list({ tenant, order: 'asc' }))` walks its chain; every tenant's in insert order.
   */
  async list(query: { tenant?: string; limit?: number; order?: 'asc' | 'desc' } = {}): Promise<AuditRecord[]> {
    const db = await this.uow.db();
    const q = db<Row>(this.table).whereNotNull('seq');
    if (query.tenant !== undefined) q.where({ tenant: query.tenant }).orderBy('seq', query.order ?? 'asc');
    else q.orderBy('position', query.order ?? 'asc');
    if (query.limit !== undefined) q.limit(query.limit);
    return (await q).map(toRecord);
  }

  /**
   * Walks each tenant's chain by seq, a page at a time (never a whole chain in memory), with the rules of
   * `verifyAuditChain`: seqs 1, 2, 3… without gaps, each prevHash the previous hash, each hash `chainHash` of its
   * record. The last record must also match the tenant's head row, so a deleted last record is caught too. Each
   * tenant is read in one read-only repeatable-read transaction: a seal that commits while it walks is not seen (the
   * sealer updates the records and the head together), so a busy chain is never reported broken. Records not sealed
   * yet are no part of the chain: they are counted as `pending`, never as a break.
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
    let records = 0,
      pending = 0;
    for (const tenant of tenants) {
      const walked = await this.uow.knex.transaction((trx) => this.#walk(trx, tenant, pageSize), SNAPSHOT);
      records += walked.records;
      pending += walked.pending;
      if (walked.problem) problems.push(walked.problem);
    }
    return { ok: problems.length === 0, tenants: tenants.length, records, pending, problems };
  }

  /** One tenant's walk in the snapshot `trx`: the records that passed, and the first problem. */
  async #walk(
    trx: Knex.Transaction,
    tenant: string,
    pageSize: number,
  ): Promise<{ records: number; pending: number; problem?: AuditProblem }> {
    const head: { seq: number; hash: string } | undefined = await trx(this.heads)
      .where({ tenant })
      .first('seq', 'hash');
    const unsealed: { n: string | number } | undefined = await trx(this.table)
      .where({ tenant })
      .whereNull('seq')
      .first(trx.raw('count(*) AS n'));
    const pending = Number(unsealed?.n ?? 0);
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
        if (reason) return { records, pending, problem: { tenant, seq: record.seq, id: record.id, reason } };
        last = { seq: record.seq, hash: record.hash, id: record.id };
        records++;
      }
    }
    const at = { tenant, seq: last.seq, id: last.id };
    if (headSeq > last.seq) {
      return {
        records,
        pending,
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
      return { records, pending, problem: { ...at, reason: 'hash does not match the head row (it was edited)' } };
    }
    return { records, pending };
  }

  /**
   * Records the entry, unchained, with the ambient transaction's commit (a failure record also after its rollback):
   * one flat INSERT the unit of work writes with the transaction's other deferred writes. No head row is touched, so
   * one tenant's commits never wait on one another; `seal()` chains the record later, in commit order.
   */
  async append(entry: AuditEntry): Promise<void> {
    await this.uow.defer(
      `INSERT INTO ${this.uow.knex.raw('??', [this.table]).toQuery()}
         (tenant, id, at, actor, type, request_id, outcome, code, replayed, reason, payload)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?::jsonb)`,
      [
        entry.tenant,
        entry.id,
        entry.at,
        entry.actor,
        entry.type,
        entry.requestId,
        entry.outcome,
        entry.code ?? null,
        entry.replayed ?? null,
        entry.reason ?? null,
        JSON.stringify(entry.payload ?? null),
      ],
      entry.outcome !== 'ok',
    );
  }

  /**
   * Chains the committed records not chained yet after their tenant's head, in commit order, and returns how many: a
   * run takes what committed before it began (after everything earlier runs took), and orders records that committed
   * since the last run by their INSERT, which the unit of work makes just before COMMIT. A record whose transaction is
   * still open is invisible here and holds nothing back: it joins the chain after its commit.
   * One sealer runs at a time (an advisory lock: a second one waits, then seals what is left), in transactions of
   * its own of `batchSize` records, never in the ambient one (on PGlite, do not call it while holding a transaction).
   * @example setInterval(() => void store.seal(), 200); // or auditSealer(store) from usecasecore
   */
  async seal(options: { readonly batchSize?: number } = {}): Promise<number> {
    const batchSize = options.batchSize ?? 1_000;
    if (!Number.isInteger(batchSize) || batchSize < 1) {
      throw new UseCaseError('misuse', `seal({ batchSize }) must be a whole number ≥ 1, got ${batchSize}`);
    }
    let sealed = 0;
    for (;;) {
      const n = await this.uow.knex.transaction((trx) => this.#sealBatch(trx, batchSize));
      sealed += n;
      if (n < batchSize) return sealed;
    }
  }

  /** One batch of `seal()` in `trx`: reads, chains in JS (`chainAfter`), and writes back the rows and the heads. */
  async #sealBatch(trx: Knex.Transaction, batchSize: number): Promise<number> {
    await trx.raw('SELECT pg_advisory_xact_lock(hashtext(?))', [`usecasecore seal ${this.table}`]);
    // Read committed: this statement sees every record committed before it began (the previous sealer's work too).
    // Between two runs, position (taken by the INSERT just before its COMMIT) orders the newly committed records.
    const { rows }: { rows: Array<Row & { position: string }> } = await trx.raw(
      `SELECT * FROM ?? WHERE seq IS NULL ORDER BY position LIMIT ?`,
      [this.table, batchSize],
    );
    if (rows.length === 0) return 0;
    // FOR UPDATE: a head bumped by an older version's append (before migration 005) is waited for, then re-read.
    const heads = new Map<string, { seq: number; hash: string; prevHash?: string | null }>();
    const found: Array<{ tenant: string; seq: number; hash: string }> = await trx(this.heads)
      .whereIn('tenant', [...new Set(rows.map((row) => row.tenant))])
      .forUpdate()
      .select('tenant', 'seq', 'hash');
    for (const head of found) heads.set(head.tenant, { seq: Number(head.seq), hash: head.hash });
    const updates = rows.map((row) => {
      const record = chainAfter(heads.get(row.tenant), toRecord(row));
      heads.set(row.tenant, record);
      return { position: row.position, seq: record.seq, prev_hash: record.prevHash, hash: record.hash };
    });
    const tip = [...heads].map(([tenant, head]) => ({ tenant, seq: head.seq, hash: head.hash, prev: head.prevHash }));
    await trx.raw(
      `WITH sealed AS (
         UPDATE ?? AS a SET seq = u.seq, prev_hash = u.prev_hash, hash = u.hash
         FROM jsonb_to_recordset(?::jsonb) AS u(position bigint, seq integer, prev_hash text, hash text)
         WHERE a.position = u.position)
       INSERT INTO ?? (tenant, seq, hash, prev_hash)
       SELECT tenant, seq, hash, prev FROM jsonb_to_recordset(?::jsonb) AS t(tenant text, seq integer, hash text, prev text)
       ON CONFLICT (tenant) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, prev_hash = excluded.prev_hash`,
      [this.table, JSON.stringify(updates), this.heads, JSON.stringify(tip)],
    );
    return rows.length;
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
  if (row.reason !== null && row.reason !== undefined) record.reason = row.reason; // the column is new in 007
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
