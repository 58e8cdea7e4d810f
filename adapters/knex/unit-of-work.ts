// Ambient knex transactions: begun lazily at the first query, savepoints for nested scopes.
import { AsyncLocalStorage } from 'node:async_hooks';
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import type { Knex } from 'knex';
import type { UnitOfWork } from '../../lib/core/ports.js';
import type { Issue } from '../../lib/core/result.js';

const RETRYABLE = new Set(['40001', '40P01']); // serialization_failure, deadlock_detected
const UNAVAILABLE = new Set(['57P01', '57P02', '57P03', '08000', '08001', '08003', '08004', '08006', '53300']);
const CONNECTION_LOST = new RegExp(
  [
    'Connection terminated',
    'ECONNREFUSED',
    'ECONNRESET',
    'EPIPE',
    'Client has encountered a connection error',
    'terminating connection',
    'Timeout acquiring a connection',
  ].join('|'),
  'i',
);

/**
 * Data exceptions a request's value causes (SQLSTATE class 22), and what to tell its sender. Others of the class
 * (division by zero, say) are the code's mistakes and stay exceptions. The database's own message is not used: knex
 * puts the statement and its bindings in it, and those may hold other fields' values.
 */
const REFUSED_VALUES: Record<string, string> = {
  '22001': 'a text is too long for its column',
  '22026': 'a value is too long for its column',
  '22003': 'a number is out of range for its column',
  '22P02': "a value is not valid for its column's type",
  '22007': 'a date or time is not valid',
  '22008': 'a date or time is out of range',
  '22021': 'a text holds a byte sequence the database cannot store',
  '22P05': 'a text holds a character the database cannot store',
};

interface Scope {
  readonly uow: KnexUnitOfWork;
  readonly outer: Scope | undefined;
  /** The outermost scope's writes deferred to its end (shared by its nested scopes). */
  readonly deferred: Deferred[];
  begin(): Promise<Knex.Transaction>;
  started?: Promise<Knex.Transaction>;
}

/** A write deferred to the end of the transaction (see `defer`). */
interface Deferred {
  readonly sql: string;
  readonly bindings: readonly unknown[];
  readonly durable: boolean;
}

// One AsyncLocalStorage for every instance: on Node 20 an enabled AsyncLocalStorage is never released and every
// promise in the process pays for each one, so one per unit of work would slow the process with every container.
const ambient = new AsyncLocalStorage<Scope>();

/**
 * The knex UnitOfWork. Repositories get the current transaction with `await uow.db()`.
 * @example
 * async lock(id: string) { const db = await this.uow.db(); return db('orders').where({ id }).forUpdate().first(); }
 */
export class KnexUnitOfWork implements UnitOfWork {
  readonly #config: Knex.TransactionConfig;
  /** `isolationLevel` defaults to Postgres' read committed; repositories lock what they decide on. */
  constructor(
    readonly knex: Knex,
    options: { readonly isolationLevel?: Knex.IsolationLevels } = {},
  ) {
    this.#config = options.isolationLevel ? { isolationLevel: options.isolationLevel } : {};
  }

  /** The ambient transaction (begun now if it was not yet), or the root knex outside any unit of work. */
  db(): Promise<Knex | Knex.Transaction> {
    const scope = this.#scope();
    return scope ? scope.begin() : Promise.resolve(this.knex);
  }

  /** Whether a unit of work is active in this async context. */
  active(): boolean {
    return this.#scope() !== undefined;
  }

  /**
   * Writes `sql` (one INSERT, UPDATE or DELETE without a WITH clause, with `?` value placeholders and no `??`: names
   * are part of the text, which is prepared once per connection) at the end of the ambient transaction: all
   * deferred writes go in one statement just before the commit, or — those marked `durable` (outcome records of a
   * failure) — in one statement after the rollback. Outside a transaction it is written at once.
   * @example await uow.defer('INSERT INTO audit (id, outcome) VALUES (?, ?)', [id, 'ok'], false);
   * @internal The library's stores write their outcome records through it.
   */
  async defer(sql: string, bindings: readonly unknown[], durable: boolean): Promise<void> {
    const scope = this.#scope();
    if (scope) scope.deferred.push({ sql, bindings, durable });
    else await this.knex.raw(sql, bindings as Knex.RawBinding[]);
  }

  async transaction<T>(work: () => Promise<T>, shouldCommit: (value: T) => boolean): Promise<T> {
    const parent = this.#scope();
    const scope: Scope = {
      uow: this,
      outer: ambient.getStore(),
      deferred: parent?.deferred ?? [],
      begin: () => (scope.started ??= parent ? parent.begin().then((trx) => savepoint(trx)) : this.#begin()),
    };
    const mark = scope.deferred.length;
    let value: T;
    try {
      value = await ambient.run(scope, work);
    } catch (error) {
      // The send's own error wins over a failure to write its records after the rollback.
      await this.#end(scope, mark, false).catch(() => undefined);
      throw error;
    }
    await this.#end(scope, mark, shouldCommit(value));
    return value;
  }

  /**
   * Begins the outermost transaction, on a connection the unit of work holds itself and gives back in `#end`: a
   * connection knex acquired would go back to the pool as soon as its BEGIN failed, before anything could tell the
   * pool it is dead, and the next send would get it again. A pooled connection cut while idle (a restart, a
   * failover, a proxy's idle timeout) looks alive until its BEGIN fails; nothing of this unit of work was sent on it,
   * so it begins once more on another one, after a turn of the event loop in which the pool's other dead connections
   * can report their end. A second loss reaches the caller (`unavailable`).
   */
  async #begin(retry = true): Promise<Knex.Transaction> {
    const connection: unknown = await this.knex.client.acquireConnection();
    let error: unknown;
    try {
      const trx = await this.knex.transaction({ ...this.#config, connection });
      error = await beginError(trx);
      if (error === undefined) return trx;
    } catch (thrown) {
      error = thrown;
    }
    this.#release(connection, error);
    if (!retry || !this.isUnavailable(error)) throw error;
    await new Promise((resolve) => setImmediate(resolve));
    return this.#begin(false);
  }

  /**
   * Commits or rolls back a scope. The outermost scope writes its deferred writes first (one statement, in the
   * transaction), or after a rollback its durable ones; a nested scope leaves them to the outermost.
   */
  async #end(scope: Scope, mark: number, commit: boolean): Promise<void> {
    const { deferred } = scope;
    if (!commit) deferred.splice(mark, Infinity, ...deferred.slice(mark).filter((write) => write.durable));
    const trx = await scope.started?.catch(() => undefined);
    if (this.#scopeOf(scope.outer)) {
      if (trx) await (commit ? trx.commit() : trx.rollback().catch(() => undefined));
      return;
    }
    if (commit) {
      try {
        if (deferred.length > 0) await writeAll(trx ?? this.knex, deferred);
        await trx?.commit();
        return;
      } catch (error) {
        await trx?.rollback().catch(() => undefined); // never leave the connection in a failed transaction
        throw error;
      } finally {
        if (trx) await this.#ended(trx);
      }
    }
    if (trx) {
      await trx.rollback().catch(() => undefined);
      await this.#ended(trx);
    }
    if (deferred.length > 0) await writeAll(this.knex, deferred); // only the durable ones are left
  }

  /** Gives a committed or rolled back transaction's connection back; a failed COMMIT or ROLLBACK says why. */
  async #ended(trx: Knex.Transaction): Promise<void> {
    const failed = await trx.executionPromise.then(
      () => undefined,
      (error: unknown) => error,
    );
    this.#release(await trx.client.acquireConnection(), failed);
  }

  /** Gives a transaction's connection back to the pool, which drops it when `error` says it was lost. */
  #release(connection: unknown, error: unknown): void {
    if (connection instanceof PgClient && error !== undefined && this.isUnavailable(error)) {
      // The flag knex's own 'error' and 'end' listeners set, which its pool checks before handing a connection out.
      (connection as { __knex__disposed?: unknown }).__knex__disposed ??= error;
    }
    delete (connection as { __knexTxId?: string }).__knexTxId; // as knex does: no later query event names this one
    void this.knex.client.releaseConnection(connection);
  }

  #scope(): Scope | undefined {
    return this.#scopeOf(ambient.getStore());
  }

  #scopeOf(start: Scope | undefined): Scope | undefined {
    for (let scope = start; scope; scope = scope.outer) if (scope.uow === this) return scope;
    return undefined;
  }

  isRetryable(error: unknown): boolean {
    return RETRYABLE.has((error as { code?: string } | undefined)?.code ?? '');
  }

  isUnavailable(error: unknown): boolean {
    const e = error as { code?: string; name?: string; message?: string } | undefined;
    return UNAVAILABLE.has(e?.code ?? '') || e?.name === 'KnexTimeoutError' || CONNECTION_LOST.test(e?.message ?? '');
  }

  refusedValue(error: unknown): Issue | undefined {
    const { code = '', column } = (error ?? {}) as { code?: string; column?: string };
    const what = REFUSED_VALUES[code];
    if (what === undefined) return undefined;
    return {
      path: column ?? '',
      message:
        `The database refused a value: ${what} (SQLSTATE ${code}); nothing was written. ` +
        "Bound the field in the request's schema (v.maxLength, v.maxValue…) to refuse it before the transaction",
    };
  }
}

/**
 * Why a transaction knex handed out did not begin, or undefined when it did. knex hands it out even when its BEGIN
 * (or SAVEPOINT) failed: it only marks it completed and rejects its `executionPromise` with the error. Used as it is,
 * its first query would throw "Transaction query already complete", a 500 where a lost connection means
 * `unavailable`; a transaction the unit of work completed itself never gets here.
 */
async function beginError(trx: Knex.Transaction): Promise<unknown> {
  if (!trx.isCompleted()) return undefined;
  return trx.executionPromise.then(
    () => new Error('The transaction completed before its first query'),
    (error: unknown) => error,
  );
}

/** A nested scope's savepoint in `trx`, or the error that prevented it (the parent's connection was lost). */
async function savepoint(trx: Knex.Transaction): Promise<Knex.Transaction> {
  const nested = await trx.transaction();
  const error = await beginError(nested);
  if (error !== undefined) throw error;
  return nested;
}

/** Runs deferred writes as one statement: each becomes a data-modifying CTE (Postgres runs them all). */
async function writeAll(db: Knex | Knex.Transaction, writes: readonly Deferred[]): Promise<void> {
  const sql =
    writes.length === 1 ? writes[0]!.sql : `WITH ${writes.map((w, i) => `w${i} AS (${w.sql})`).join(', ')} SELECT 1`;
  await prepared(db, sql, writes.length === 1 ? writes[0]!.bindings : writes.flatMap((w) => w.bindings));
}

/** The slice of a pg connection (`pg.Client`) the prepared path uses; the project ships no @types/pg. */
interface PgConnection {
  query(config: { name: string; text: string; values: readonly unknown[] }): Promise<{ rows: any[] }>;
}
/** pg's Client class, the one knex's pg dialect loads (the same module, so `instanceof` tells its connections). */
const PgClient = (createRequire(import.meta.url)('pg') as { Client: abstract new () => PgConnection }).Client;

/** A statement's name, and its text with `$1, $2…` in place of knex's `?` placeholders (`\\?` stays a `?`). */
interface Statement {
  readonly name: string;
  readonly text: string;
}
const statements = new Map<string, Statement>();

function statementOf(sql: string): Statement {
  let statement = statements.get(sql);
  if (statement === undefined) {
    let n = 0;
    statement = {
      name: `ucc_${createHash('sha256').update(sql).digest('hex').slice(0, 24)}`,
      text: sql.replace(/\\\?|\?/g, (match) => (match === '?' ? `$${++n}` : '?')),
    };
    if (statements.size < 1_000) statements.set(sql, statement); // bounded: outbox batches of any size make new texts
  }
  return statement;
}

/**
 * Runs `sql` as a named prepared statement of its connection: Postgres parses and plans the library's few statement
 * shapes once per connection instead of on every send (PGlite ignores the name). Names come from the text's hash.
 * In a transaction on node-postgres it goes to the transaction's connection directly, past knex's query runner
 * (the library's statements are fixed texts: nothing for knex to build), so knex's query events do not see it.
 * @example await prepared(trx, 'INSERT INTO ucc_inbox (consumer, message_id) VALUES (?, ?)', ['billing', id]);
 */
export async function prepared(
  db: Knex | Knex.Transaction,
  sql: string,
  bindings: readonly unknown[],
): Promise<{ rows: any[] }> {
  if (sql.includes('??')) return db.raw(sql, bindings as Knex.RawBinding[]); // the text varies with its identifiers
  const { name, text } = statementOf(sql);
  if (db.isTransaction) {
    const connection: unknown = await db.client.acquireConnection(); // the transaction's own connection
    if (connection instanceof PgClient) return connection.query({ name, text, values: bindings });
  }
  return db.raw(sql, bindings as Knex.RawBinding[]).options({ name });
}
