// Processes in Postgres: a row per process, a row per step, and a row per correlation a step waits on (or an event
// that came before its waiter), each written in the transaction that decides it (migration 009).
import type { Knex } from 'knex';
import type {
  Clock,
  Correlation,
  ProcessRecord,
  ProcessState,
  ProcessStore,
  StepRecord,
  Waiter,
} from '../../lib/core/ports.js';
import { deleteInBatches } from './purge.js';
import type { Tables } from './tables.js';
import { prepared, type KnexUnitOfWork } from './unit-of-work.js';

/** The tables of the knex ProcessStore (from `tables()`). */
export type ProcessTables = Pick<Tables, 'processes' | 'processSteps' | 'processWaits'>;

interface ProcessRow {
  id: string;
  type: string;
  tenant: string;
  actor: ProcessRecord['actor'] | null;
  state: ProcessState;
  input: unknown;
  failure: ProcessRecord['failure'] | null;
  deadline_at: Date | string | null;
  started_at: Date | string;
  updated_at: Date | string;
  ended_at: Date | string | null;
  trace: ProcessRecord['trace'] | null;
}

interface StepRow {
  process_id: string;
  index: number;
  name: string;
  state: StepRecord['state'];
  attempts: number;
  compensations: number;
  result: unknown;
  failure: StepRecord['failure'] | null;
  started_at: Date | string | null;
  settled_at: Date | string | null;
}

const json = (value: unknown) => (value === undefined ? null : JSON.stringify(value));
const iso = (time: Date | string) => new Date(time).toISOString();

/** The knex ProcessStore (tables `<prefix>processes`, `<prefix>process_steps`, `<prefix>process_waits`). */
export class KnexProcessStore implements ProcessStore {
  constructor(
    private readonly uow: KnexUnitOfWork,
    private readonly tables: ProcessTables,
    private readonly clock: Clock = Date,
  ) {
    const [processes, steps] = [tables.processes, tables.processSteps].map((t) => uow.knex.raw('??', [t]).toQuery());
    // The steps are read by a statement of their own, after the lock is held: one statement would read them from
    // its snapshot, taken before a transaction it waited for committed (read committed re-reads the locked row only).
    this.#lockSql = `SELECT * FROM ${processes} WHERE id = ? FOR UPDATE`;
    this.#stepsSql = `SELECT * FROM ${steps} WHERE process_id = ? ORDER BY index`;
    this.#updateSql = `UPDATE ${processes} SET type = ?, tenant = ?, actor = ?::jsonb, state = ?, input = ?::jsonb,
      failure = ?::jsonb, deadline_at = ?, started_at = ?, updated_at = ?, ended_at = ?, trace = ?::jsonb WHERE id = ?`;
    this.#upsertStepsSql = (rows) =>
      `INSERT INTO ${steps} (process_id, index, name, state, attempts, compensations, result, failure, started_at,
      settled_at) VALUES ${Array(rows).fill('(?, ?, ?, ?, ?, ?, ?::jsonb, ?::jsonb, ?, ?)').join(', ')}
      ON CONFLICT (process_id, index) DO UPDATE SET name = EXCLUDED.name, state = EXCLUDED.state,
      attempts = EXCLUDED.attempts, compensations = EXCLUDED.compensations, result = EXCLUDED.result,
      failure = EXCLUDED.failure, started_at = EXCLUDED.started_at, settled_at = EXCLUDED.settled_at`;
  }

  readonly #lockSql: string;
  readonly #stepsSql: string;
  readonly #updateSql: string;
  readonly #upsertStepsSql: (rows: number) => string;
  /** Steps as `lock` read them: a save writes only the steps that are not these very objects (the changed ones). */
  readonly #loaded = new WeakSet<StepRecord>();

  async add(process: ProcessRecord): Promise<void> {
    const db = await this.uow.db();
    const inserted = await db(this.tables.processes)
      .insert(processRow(process))
      .onConflict('id')
      .ignore()
      .returning('id');
    if (inserted.length > 0) await this.#writeSteps(db, process);
  }

  async lock(processId: string): Promise<ProcessRecord | undefined> {
    const db = await this.uow.db();
    const row = (await prepared(db, this.#lockSql, [processId])).rows[0] as ProcessRow | undefined;
    if (!row) return undefined;
    const steps = ((await prepared(db, this.#stepsSql, [processId])).rows as StepRow[]).map(toStep);
    for (const step of steps) this.#loaded.add(step);
    return toProcess(row, steps);
  }

  async save(process: ProcessRecord): Promise<void> {
    const { id, ...row } = processRow(process);
    const update = [row.type, row.tenant, row.actor, row.state, row.input, row.failure, row.deadline_at].concat([
      row.started_at,
      row.updated_at,
      row.ended_at,
      row.trace,
      id,
    ]);
    const changed = process.steps.flatMap((step, index) => (this.#loaded.has(step) ? [] : [{ step, index }]));
    if (changed.length === 0) return void (await prepared(await this.uow.db(), this.#updateSql, update));
    const upsert = changed.flatMap(({ step, index }) => Object.values(stepRow(id, index, step)));
    const both = `WITH process AS (${this.#updateSql}) ${this.#upsertStepsSql(changed.length)}`;
    await prepared(await this.uow.db(), both, [...update, ...upsert]);
  }

  async get(processId: string): Promise<ProcessRecord | undefined> {
    const db = await this.uow.db();
    const row = await db<ProcessRow>(this.tables.processes).where({ id: processId }).first();
    return row && this.#withSteps(db, [row]).then(([process]) => process);
  }

  async list(query: Parameters<ProcessStore['list']>[0] = {}): Promise<ProcessRecord[]> {
    const db = await this.uow.db();
    const select = db<ProcessRow>(this.tables.processes)
      .orderBy([
        { column: 'started_at', order: 'desc' },
        { column: 'id', order: 'desc' },
      ])
      .limit(Math.max(1, Math.min(query.limit ?? 100, 1_000)));
    if (query.tenant !== undefined) void select.where({ tenant: query.tenant });
    if (query.states) void select.whereIn('state', [...query.states]);
    return this.#withSteps(db, await select);
  }

  async wait(correlation: Correlation, waiter: Waiter): Promise<{ readonly payload: unknown } | undefined> {
    const db = await this.uow.db();
    // Inserted, or the row already there returned locked (a no-op update): an arrival's writer commits first.
    const [row] = await db(this.tables.processWaits)
      .insert({ ...correlation, process_id: waiter.processId, step: waiter.step, arrived: false })
      .onConflict(['event', 'key'])
      .merge({ event: db.raw('EXCLUDED.event') })
      .returning(['arrived', 'payload']);
    if (row?.arrived) {
      await db(this.tables.processWaits).where(correlation).delete();
      return { payload: row.payload };
    }
    await db(this.tables.processWaits).where(correlation).update({ process_id: waiter.processId, step: waiter.step });
    return undefined;
  }

  async signal(correlation: Correlation, payload: unknown): Promise<Waiter | undefined> {
    const db = await this.uow.db();
    const [row] = await db(this.tables.processWaits)
      .insert({ ...correlation, payload: json(payload), arrived: true, arrived_at: new Date(this.clock.now()) })
      .onConflict(['event', 'key'])
      .merge({ event: db.raw('EXCLUDED.event') }) // a no-op update: it locks the row and returns it
      .returning(['arrived', 'process_id', 'step']);
    if (!row || row.process_id === null) return undefined; // kept for the waiter to come (or a second arrival)
    await db(this.tables.processWaits).where(correlation).delete();
    return { processId: row.process_id as string, step: Number(row.step) };
  }

  async unwait(correlation: Correlation): Promise<void> {
    const db = await this.uow.db();
    await db(this.tables.processWaits)
      .where({ ...correlation, arrived: false })
      .delete();
  }

  /**
   * Deletes processes ended completed or compensated more than `olderThanMs` ago (their steps go with them), and
   * events kept as long for a wait that never came.
   */
  async purge(olderThanMs: number): Promise<number> {
    const cutoff = new Date(this.clock.now() - olderThanMs);
    const ended = "ended_at < ? AND state IN ('completed', 'compensated')";
    const processes = await deleteInBatches(this.uow.knex, this.tables.processes, ended, [cutoff]);
    return (
      processes +
      (await deleteInBatches(this.uow.knex, this.tables.processWaits, 'arrived AND arrived_at < ?', [cutoff]))
    );
  }

  async #writeSteps(db: Knex | Knex.Transaction, process: ProcessRecord): Promise<void> {
    if (process.steps.length === 0) return;
    await db(this.tables.processSteps)
      .insert(process.steps.map((step, index) => stepRow(process.processId, index, step)))
      .onConflict(['process_id', 'index'])
      .merge();
  }

  async #withSteps(db: Knex | Knex.Transaction, rows: readonly ProcessRow[]): Promise<ProcessRecord[]> {
    if (rows.length === 0) return [];
    const steps = await db<StepRow>(this.tables.processSteps)
      .whereIn(
        'process_id',
        rows.map((r) => r.id),
      )
      .orderBy(['process_id', 'index']);
    const byProcess = new Map<string, StepRecord[]>();
    for (const step of steps) byProcess.set(step.process_id, [...(byProcess.get(step.process_id) ?? []), toStep(step)]);
    return rows.map((row) => toProcess(row, byProcess.get(row.id) ?? []));
  }
}

function processRow(p: ProcessRecord) {
  return {
    id: p.processId,
    type: p.type,
    tenant: p.tenant,
    actor: json(p.actor),
    state: p.state,
    input: json(p.input),
    failure: json(p.failure),
    deadline_at: p.deadlineAt ?? null,
    started_at: p.startedAt,
    updated_at: p.updatedAt,
    ended_at: p.endedAt ?? null,
    trace: json(p.trace),
  };
}

function stepRow(processId: string, index: number, s: StepRecord) {
  return {
    process_id: processId,
    index,
    name: s.name,
    state: s.state,
    attempts: s.attempts,
    compensations: s.compensations,
    result: json(s.result),
    failure: json(s.failure),
    started_at: s.startedAt ?? null,
    settled_at: s.settledAt ?? null,
  };
}

function toProcess(row: ProcessRow, steps: StepRecord[]): ProcessRecord {
  return {
    processId: row.id,
    type: row.type,
    tenant: row.tenant,
    ...(row.actor ? { actor: row.actor } : {}),
    state: row.state,
    input: row.input,
    steps,
    ...(row.failure ? { failure: row.failure } : {}),
    ...(row.deadline_at ? { deadlineAt: iso(row.deadline_at) } : {}),
    startedAt: iso(row.started_at),
    updatedAt: iso(row.updated_at),
    ...(row.ended_at ? { endedAt: iso(row.ended_at) } : {}),
    ...(row.trace ? { trace: row.trace } : {}),
  };
}

function toStep(row: StepRow): StepRecord {
  return {
    name: row.name,
    state: row.state,
    attempts: Number(row.attempts),
    compensations: Number(row.compensations),
    ...(row.result === null || row.result === undefined ? {} : { result: row.result }),
    ...(row.failure ? { failure: row.failure } : {}),
    ...(row.started_at ? { startedAt: iso(row.started_at) } : {}),
    ...(row.settled_at ? { settledAt: iso(row.settled_at) } : {}),
  };
}
