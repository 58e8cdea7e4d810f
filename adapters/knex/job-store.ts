// Job states in Postgres: queued and settled with the transactions that decide them, taken in a write of its own.
import type { JobOutcome, JobRecord, JobStore } from '../../lib/core/ports.js';
import type { Clock } from '../../lib/core/ports.js';
import { deleteInBatches } from './purge.js';
import { prepared, type KnexUnitOfWork } from './unit-of-work.js';

interface Row {
  id: string;
  type: string;
  queue: string;
  tenant: string;
  key: string | null;
  state: JobRecord['state'];
  attempts: number;
  result: unknown;
  failure: JobRecord['failure'] | null;
  enqueued_at: Date | string;
  run_at: Date | string;
  started_at: Date | string | null;
  settled_at: Date | string | null;
}

/** What `KnexJobStore.list` selects; every field narrows it. */
export interface JobQuery {
  readonly type?: string;
  readonly tenant?: string;
  readonly states?: readonly JobRecord['state'][];
  /** ISO 8601 or ms since the epoch: enqueued before it. */
  readonly enqueuedBefore?: string | number;
  /** At most this many (default 50). */
  readonly limit?: number;
}

/** The knex JobStore (table `<prefix>jobs`, migration 008). */
export class KnexJobStore implements JobStore {
  readonly #insert: string;
  readonly #take: string;
  readonly #settle: string;
  readonly #cancel: string;
  readonly #read: string;

  constructor(
    private readonly uow: KnexUnitOfWork,
    private readonly table: string,
    private readonly clock: Clock = Date,
  ) {
    const t = uow.knex.raw('??', [table]).toQuery();
    this.#insert = `INSERT INTO ${t} (id, type, queue, tenant, key, state, attempts, enqueued_at, run_at) VALUES`;
    this.#take = `UPDATE ${t} SET state = 'running', attempts = attempts + 1, started_at = COALESCE(started_at, ?)
      WHERE id = ? AND state IN ('queued', 'running') RETURNING *`;
    this.#settle = `UPDATE ${t} SET state = ?, result = ?::jsonb, failure = ?::jsonb, settled_at = ?
      WHERE id = ? AND state IN ('queued', 'running') RETURNING id`;
    this.#cancel = `UPDATE ${t} SET state = 'cancelled', settled_at = ? WHERE id = ? AND state = 'queued' RETURNING id`;
    this.#read = `SELECT * FROM ${t} WHERE id = ?`;
  }

  /** Inserts with the ambient transaction's commit (in its one statement of deferred writes). */
  async add(jobs: readonly JobRecord[]): Promise<void> {
    if (jobs.length === 0) return;
    const values = jobs.map(() => '(?, ?, ?, ?, ?, ?, ?, ?, ?)').join(', ');
    const bindings = jobs.flatMap((j) => [
      j.jobId,
      j.type,
      j.queue,
      j.tenant,
      j.key ?? null,
      j.state,
      j.attempts,
      j.enqueuedAt,
      j.runAt,
    ]);
    await this.uow.defer(`${this.#insert} ${values} ON CONFLICT (id) DO NOTHING`, bindings, false);
  }

  /**
   * Taken, or else read by a statement of its own: an UPDATE that waited for a settle or a cancel to commit finds
   * the row changed, but a read in the same statement would still see it as it was before (its snapshot).
   */
  async start(jobId: string, at: string): Promise<JobRecord | undefined> {
    const { rows } = await prepared(this.uow.knex, this.#take, [at, jobId]);
    if (rows[0]) return toRecord(rows[0]);
    const { rows: found } = await prepared(this.uow.knex, this.#read, [jobId]);
    return found[0] && toRecord(found[0]);
  }

  /** At once, in the ambient transaction: the row stays locked until it ends, so a second settle waits and sees. */
  async settle(jobId: string, outcome: JobOutcome, at: string): Promise<boolean> {
    const result = outcome.state === 'succeeded' ? JSON.stringify(outcome.result ?? null) : null;
    const failure = outcome.state === 'succeeded' ? null : JSON.stringify(outcome.failure);
    const { rows } = await prepared(await this.uow.db(), this.#settle, [outcome.state, result, failure, at, jobId]);
    return rows.length > 0;
  }

  async cancel(jobId: string, at: string): Promise<boolean> {
    const { rows } = await prepared(await this.uow.db(), this.#cancel, [at, jobId]);
    return rows.length > 0;
  }

  async status(jobId: string): Promise<JobRecord | undefined> {
    const { rows } = await prepared(await this.uow.db(), this.#read, [jobId]);
    return rows[0] && toRecord(rows[0]);
  }

  /**
   * Jobs newest first, for an operator (`usecasecore jobs list`): of a type, a tenant, in some states, enqueued before
   * a time; at most `limit`.
   * @example await store.list({ states: ['failed', 'dead'], limit: 20 })
   */
  async list(query: JobQuery = {}): Promise<JobRecord[]> {
    const select = this.uow.knex<Row>(this.table).orderBy([
      { column: 'enqueued_at', order: 'desc' },
      { column: 'id', order: 'desc' },
    ]);
    if (query.type !== undefined) void select.where('type', query.type);
    if (query.tenant !== undefined) void select.where('tenant', query.tenant);
    if (query.states) void select.whereIn('state', [...query.states]);
    if (query.enqueuedBefore !== undefined) void select.where('enqueued_at', '<', new Date(query.enqueuedBefore));
    return (await select.limit(query.limit ?? 50)).map(toRecord);
  }

  /** Deletes jobs settled more than `olderThanMs` ago (keyed ones never), in batches; returns how many. */
  async purge(olderThanMs: number): Promise<number> {
    const cutoff = new Date(this.clock.now() - olderThanMs);
    return deleteInBatches(this.uow.knex, this.table, 'settled_at < ? AND key IS NULL', [cutoff]);
  }
}

const iso = (time: Date | string) => new Date(time).toISOString();

function toRecord(row: Row): JobRecord {
  return {
    jobId: row.id,
    type: row.type,
    queue: row.queue,
    tenant: row.tenant,
    ...(row.key === null ? {} : { key: row.key }),
    state: row.state,
    attempts: Number(row.attempts),
    ...(row.state === 'succeeded' ? { result: row.result } : {}),
    ...(row.failure ? { failure: row.failure } : {}),
    enqueuedAt: iso(row.enqueued_at),
    runAt: iso(row.run_at),
    ...(row.started_at ? { startedAt: iso(row.started_at) } : {}),
    ...(row.settled_at ? { settledAt: iso(row.settled_at) } : {}),
  };
}
