// The transactional outbox in Postgres. Claims are short transactions that lease rows to one relay at a time.
import type { Knex } from 'knex';
import type { Clock, Outbox, OutboxMessage } from '../../lib/core/ports.js';
import { deleteInBatches } from './purge.js';
import type { KnexUnitOfWork } from './unit-of-work.js';

interface Row {
  id: string;
  kind: 'event' | 'job';
  type: string;
  payload: unknown;
  occurred_at: Date | string;
  aggregate_id: string | null;
  headers: Record<string, string>;
  available_at: Date | string | null;
  attempts: number;
}

/** Options of the knex outbox. */
export interface KnexOutboxOptions {
  /** How long a claimed row stays with its relay before another may take it (a relay that died). Default 30 s. */
  readonly claimLeaseMs?: number;
}

/** The knex Outbox. Sent rows keep `sent_at` (see `purgeSent`); parked rows keep their last error. */
export class KnexOutbox implements Outbox {
  readonly #leaseMs: number;
  readonly #insert: string;
  constructor(
    private readonly uow: KnexUnitOfWork,
    private readonly table: string,
    private readonly clock: Clock = Date,
    options: KnexOutboxOptions = {},
  ) {
    this.#leaseMs = options.claimLeaseMs ?? 30_000;
    this.#insert = `INSERT INTO ${uow.knex.raw('??', [table]).toQuery()}
      (id, kind, type, payload, occurred_at, aggregate_id, headers, available_at) VALUES`;
  }

  /**
   * Writes the messages with the ambient transaction's commit (in its one statement of deferred writes); an id the
   * table holds already (a keyed job enqueued again) is skipped.
   */
  async add(messages: readonly OutboxMessage[]): Promise<void> {
    if (messages.length === 0) return;
    const values = messages.map(() => '(?, ?, ?, ?::jsonb, ?, ?, ?::jsonb, ?)').join(', ');
    const bindings = messages.flatMap((m) => [
      m.id,
      m.kind,
      m.type,
      JSON.stringify(m.payload ?? null),
      m.occurredAt,
      m.aggregateId ?? null,
      JSON.stringify(m.headers),
      m.availableAt ?? null,
    ]);
    await this.uow.defer(`${this.#insert} ${values} ON CONFLICT (id) DO NOTHING`, bindings, false);
  }

  async claim(limit: number): Promise<OutboxMessage[]> {
    const now = this.clock.now();
    // Two lines of rows, each walked by its own index and stopped after `limit`: rows due now (no `available_at`) in
    // position order, and scheduled rows by due time, so 100,000 rows scheduled for tomorrow cost a claim nothing
    // (walking one index past them took ~100 ms). Only the oldest unsent row of an aggregate is handed out, so a
    // failed publish never lets a later row of it overtake. The advisory lock makes competing relays claim one after
    // another (a claim takes a few ms), so that rule is judged on committed claims; SKIP LOCKED passes over rows
    // some other transaction still holds. Rows without an aggregate skip the NOT EXISTS: as a bare anti-join
    // Postgres hashed every unsent row on each claim, slowing down exactly when a backlog needs draining.
    return this.uow.knex.transaction(async (trx) => {
      // jit off: once the table has seen traffic the planner's estimate passes jit_above_cost, and compiling the
      // statement (~100–150 ms) costs far more than running it (a few ms). Same round trip as the lock.
      await trx.raw(`SELECT set_config('jit', 'off', true), pg_advisory_xact_lock(hashtext(?))`, [this.table]);
      const open = `c.sent_at IS NULL AND c.parked_at IS NULL AND (c.claimed_until IS NULL OR c.claimed_until < :now)
        AND (c.aggregate_id IS NULL OR NOT EXISTS (SELECT 1 FROM :table: AS e WHERE e.aggregate_id = c.aggregate_id
                        AND e.position < c.position AND e.sent_at IS NULL AND e.parked_at IS NULL))`;
      const { rows } = await trx.raw(
        `WITH now_due AS (
           SELECT c.position FROM :table: AS c WHERE c.available_at IS NULL AND ${open}
           ORDER BY c.position LIMIT :limit FOR UPDATE SKIP LOCKED
         ), scheduled_due AS (
           SELECT c.position FROM :table: AS c WHERE c.available_at <= :nowDate AND ${open}
           ORDER BY c.available_at, c.position LIMIT :limit FOR UPDATE SKIP LOCKED
         )
         UPDATE :table: AS o SET claimed_until = :lease WHERE o.position IN (
           SELECT position FROM (SELECT position FROM now_due UNION ALL SELECT position FROM scheduled_due) AS due
           ORDER BY position LIMIT :limit)
         RETURNING o.*`,
        { table: this.table, now, nowDate: new Date(now), lease: now + this.#leaseMs, limit },
      );
      return (rows as Array<Row & { position: string }>)
        .sort((a, b) => Number(a.position) - Number(b.position))
        .map(toMessage);
    });
  }

  async markSent(ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return;
    // The Clock's time, not the server's: `purgeSent` judges ages by the same clock.
    await this.uow
      .knex(this.table)
      .whereIn('id', ids)
      .update({ sent_at: new Date(this.clock.now()), claimed_until: null });
  }

  async markFailed(id: string, error: string, park: boolean): Promise<void> {
    const knex = this.uow.knex;
    await knex(this.table)
      .where({ id })
      .update({
        attempts: knex.raw('attempts + 1'),
        last_error: error.slice(0, 2_000),
        claimed_until: null,
        parked_at: park ? knex.fn.now() : null,
      });
  }

  async release(ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return;
    await this.uow.knex(this.table).whereIn('id', ids).whereNull('sent_at').update({ claimed_until: null });
  }

  async pending(): Promise<number> {
    const db: Knex = this.uow.knex;
    const [row] = await db(this.table)
      .whereNull('sent_at')
      .whereNull('parked_at')
      .where((due) => due.whereNull('available_at').orWhere('available_at', '<=', new Date(this.clock.now())))
      .count({ n: '*' });
    return Number(row?.n ?? 0);
  }

  /**
   * Deletes sent rows whose `sent_at` is more than `olderThanMs` ago, in batches; unsent and parked rows are never
   * touched.
   */
  async purgeSent(olderThanMs: number): Promise<number> {
    return deleteInBatches(this.uow.knex, this.table, 'sent_at < ?', [new Date(this.clock.now() - olderThanMs)]);
  }

  /**
   * Counts per message type: `unsent` (due, not sent, not parked: the backlog, in flight included), `inFlight` (of
   * those, claimed by a relay right now), `scheduled` (not due yet), `parked`, `sent` (kept until purged), and when
   * the oldest unsent row occurred.
   * @example const { totals } = await outbox.status(); if (totals.parked > 0) alert();
   */
  async status(): Promise<OutboxStatus> {
    const now = this.clock.now();
    const due = '(sent_at IS NULL AND parked_at IS NULL AND (available_at IS NULL OR available_at <= :nowDate))';
    const { rows } = await this.uow.knex.raw(
      `SELECT kind, type,
         count(*) FILTER (WHERE ${due}) AS unsent,
         count(*) FILTER (WHERE ${due} AND claimed_until >= :now) AS in_flight,
         count(*) FILTER (WHERE sent_at IS NULL AND parked_at IS NULL AND available_at > :nowDate) AS scheduled,
         count(*) FILTER (WHERE sent_at IS NULL AND parked_at IS NOT NULL) AS parked,
         count(*) FILTER (WHERE sent_at IS NOT NULL) AS sent,
         min(occurred_at) FILTER (WHERE ${due}) AS oldest_unsent
       FROM :table: GROUP BY kind, type ORDER BY kind, type`,
      { now, nowDate: new Date(now), table: this.table },
    );
    const types = (rows as StatusRow[]).map((row): OutboxTypeStatus => {
      const oldest = row.oldest_unsent === null ? null : new Date(row.oldest_unsent);
      return {
        kind: row.kind,
        type: row.type,
        unsent: Number(row.unsent),
        inFlight: Number(row.in_flight),
        scheduled: Number(row.scheduled),
        parked: Number(row.parked),
        sent: Number(row.sent),
        oldestUnsentAt: oldest?.toISOString() ?? null,
        oldestUnsentAgeMs: oldest ? Math.max(0, now - oldest.getTime()) : null,
      };
    });
    const sum = (key: 'unsent' | 'inFlight' | 'scheduled' | 'parked' | 'sent') => types.reduce((n, t) => n + t[key], 0);
    const ages = types.flatMap((t) => (t.oldestUnsentAgeMs === null ? [] : [t.oldestUnsentAgeMs]));
    return {
      types,
      totals: {
        unsent: sum('unsent'),
        inFlight: sum('inFlight'),
        scheduled: sum('scheduled'),
        parked: sum('parked'),
        sent: sum('sent'),
        oldestUnsentAgeMs: ages.length > 0 ? Math.max(...ages) : null,
      },
    };
  }

  /**
   * The oldest parked rows (up to `limit`) with their last error, so an operator can pick what to retry.
   * @example for (const row of await outbox.parked(20)) console.log(row.id, row.lastError);
   */
  async parked(limit = 20): Promise<ParkedRow[]> {
    const found = await this.uow
      .knex(this.table)
      .whereNotNull('parked_at')
      .whereNull('sent_at')
      .orderBy('position')
      .limit(limit)
      .select('id', 'kind', 'type', 'attempts', 'last_error', 'parked_at');
    return found.map((row) => ({
      id: row.id,
      kind: row.kind,
      type: row.type,
      attempts: Number(row.attempts),
      lastError: row.last_error ?? null,
      parkedAt: new Date(row.parked_at).toISOString(),
    }));
  }

  /**
   * Puts parked rows back in line: attempts back to 0, `parked_at` cleared. `last_error` is kept, so the reason it
   * was parked stays visible until the next failure overwrites it. Ids that are not parked (sent, still in line)
   * or do not exist are reported, not changed.
   * @example const { retried, notParked, missing } = await outbox.retry(['0b8f…']);
   */
  async retry(ids: readonly string[]): Promise<{ retried: string[]; notParked: string[]; missing: string[] }> {
    if (ids.length === 0) return { retried: [], notParked: [], missing: [] };
    const knex = this.uow.knex;
    // One array parameter, not one per id: a statement takes at most 65,535 parameters.
    const { rows } = await knex.raw(
      `UPDATE ?? SET parked_at = NULL, attempts = 0, claimed_until = NULL
       WHERE id = ANY(?::text[]) AND parked_at IS NOT NULL AND sent_at IS NULL RETURNING id`,
      [this.table, [...ids]],
    );
    const retried = new Set((rows as Array<{ id: string }>).map((r) => r.id));
    const rest = ids.filter((id) => !retried.has(id));
    const existing =
      rest.length === 0 ? [] : (await knex.raw(`SELECT id FROM ?? WHERE id = ANY(?::text[])`, [this.table, rest])).rows;
    const found = new Set((existing as Array<{ id: string }>).map((r) => r.id));
    return {
      retried: ids.filter((id) => retried.has(id)),
      notParked: rest.filter((id) => found.has(id)),
      missing: rest.filter((id) => !found.has(id)),
    };
  }

  /** Puts every parked row back in line (see `retry`); returns how many. */
  async retryParked(): Promise<number> {
    const { rows } = await this.uow.knex.raw(
      `UPDATE ?? SET parked_at = NULL, attempts = 0, claimed_until = NULL
       WHERE parked_at IS NOT NULL AND sent_at IS NULL RETURNING 1`,
      [this.table],
    );
    return rows.length;
  }
}

interface StatusRow {
  kind: 'event' | 'job';
  type: string;
  unsent: string | number;
  in_flight: string | number;
  scheduled: string | number;
  parked: string | number;
  sent: string | number;
  oldest_unsent: Date | string | null;
}

/** One message type's line of `KnexOutbox.status()`. */
export interface OutboxTypeStatus {
  readonly kind: 'event' | 'job';
  readonly type: string;
  /** Due, not sent and not parked (in flight included). */
  readonly unsent: number;
  /** Unsent rows a relay holds a claim on right now. */
  readonly inFlight: number;
  /** Not sent, not parked, and not due yet (a delayed job, a process's timeout): not part of the backlog. */
  readonly scheduled: number;
  /** Set aside after their last failed attempt: `usecasecore outbox retry` puts them back. */
  readonly parked: number;
  /** Sent rows not yet purged. */
  readonly sent: number;
  readonly oldestUnsentAt: string | null;
  readonly oldestUnsentAgeMs: number | null;
}

/** A parked row, as `KnexOutbox.parked()` lists it. */
export interface ParkedRow {
  readonly id: string;
  readonly kind: 'event' | 'job';
  readonly type: string;
  readonly attempts: number;
  readonly lastError: string | null;
  readonly parkedAt: string;
}

/** What `KnexOutbox.status()` found: per type, and in total. */
export interface OutboxStatus {
  readonly types: readonly OutboxTypeStatus[];
  readonly totals: {
    readonly unsent: number;
    readonly inFlight: number;
    readonly scheduled: number;
    readonly parked: number;
    readonly sent: number;
    readonly oldestUnsentAgeMs: number | null;
  };
}

function toMessage(row: Row): OutboxMessage {
  return {
    id: row.id,
    kind: row.kind,
    type: row.type,
    payload: row.payload,
    occurredAt: new Date(row.occurred_at).toISOString(),
    aggregateId: row.aggregate_id ?? undefined,
    headers: row.headers,
    ...(row.available_at ? { availableAt: new Date(row.available_at).toISOString() } : {}),
    attempts: Number(row.attempts),
  };
}
