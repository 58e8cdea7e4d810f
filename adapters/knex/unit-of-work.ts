// Ambient knex transactions: begun lazily at the first query, savepoints for nested scopes.
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Knex } from 'knex';
import type { UnitOfWork } from '../../lib/ports.js';

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

interface Scope {
  readonly uow: KnexUnitOfWork;
  readonly outer: Scope | undefined;
  begin(): Promise<Knex.Transaction>;
  started?: Promise<Knex.Transaction>;
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

  async transaction<T>(work: () => Promise<T>, shouldCommit: (value: T) => boolean): Promise<T> {
    const parent = this.#scope();
    const scope: Scope = {
      uow: this,
      outer: ambient.getStore(),
      begin: () =>
        (scope.started ??= parent
          ? parent.begin().then((trx) => trx.transaction())
          : this.knex.transaction(this.#config)),
    };
    let value: T;
    try {
      value = await ambient.run(scope, work);
    } catch (error) {
      const trx = await scope.started?.catch(() => undefined);
      await trx?.rollback().catch(() => undefined);
      throw error;
    }
    if (scope.started) {
      const trx = await scope.started;
      if (shouldCommit(value)) await trx.commit();
      else await trx.rollback();
    }
    return value;
  }

  #scope(): Scope | undefined {
    for (let scope = ambient.getStore(); scope; scope = scope.outer) if (scope.uow === this) return scope;
    return undefined;
  }

  isRetryable(error: unknown): boolean {
    return RETRYABLE.has((error as { code?: string } | undefined)?.code ?? '');
  }

  isUnavailable(error: unknown): boolean {
    const e = error as { code?: string; name?: string; message?: string } | undefined;
    return UNAVAILABLE.has(e?.code ?? '') || e?.name === 'KnexTimeoutError' || CONNECTION_LOST.test(e?.message ?? '');
  }
}
