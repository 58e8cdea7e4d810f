// The knex adapters (Postgres, or PGlite through knex-pglite) and the Inversify module that binds them.
import { ContainerModule } from 'inversify';
import knex, { type Knex } from 'knex';
import type { Clock } from '../../lib/core/ports.js';
import { TOKENS } from '../../lib/core/tokens.js';
import { KnexAuditStore } from './audit-store.js';
import { KnexIdempotencyStore } from './idempotency-store.js';
import { KnexInbox } from './inbox.js';
import { KnexJobStore } from './job-store.js';
import { KnexOutbox, type KnexOutboxOptions } from './outbox.js';
import { tables, type TableOptions } from './tables.js';
import { KnexUnitOfWork } from './unit-of-work.js';

export { KnexAuditStore, type AuditProblem, type AuditVerification } from './audit-store.js';
export { KnexIdempotencyStore } from './idempotency-store.js';
export { KnexInbox } from './inbox.js';
export { KnexJobStore } from './job-store.js';
export {
  KnexOutbox,
  type KnexOutboxOptions,
  type OutboxStatus,
  type OutboxTypeStatus,
  type ParkedRow,
} from './outbox.js';
export { cursor, type CursorOptions } from './cursor.js';
export { pgliteKnex } from './pglite.js';
export { migrate, pendingMigrations, tables, type PendingMigration, type TableOptions, type Tables } from './tables.js';
export { KnexUnitOfWork } from './unit-of-work.js';

/** The Inversify token of the module's knex instance (destroy it on shutdown). */
export const KNEX = Symbol.for('usecasecore.Knex');

/** Options of `knexModule()`: a Postgres connection, or a knex instance of your own (e.g. `await pgliteKnex()`). */
export interface KnexModuleOptions extends TableOptions, KnexOutboxOptions {
  readonly connection?: string | Knex.PgConnectionConfig;
  readonly knex?: Knex;
  /** Pool size for `connection`. Default 2–10. */
  readonly pool?: { readonly min?: number; readonly max?: number };
  /** The clock leases, TTLs and claims are judged by. Default `Date`. */
  readonly clock?: Clock;
  /** Transaction isolation. Default read committed (with row locks); `serializable` relies on the retries. */
  readonly isolationLevel?: Knex.IsolationLevels;
}

/**
 * Binds the unit of work, idempotency, audit, outbox, inbox and job stores to Postgres through knex. Run `migrate(knex)`
 * (or `npm run migrate`) once before use. Pair it with a bus module (`memoryBusModule()`, `amqpModule(...)`).
 * @example container.load(knexModule({ connection: process.env.DATABASE_URL }), memoryBusModule());
 */
export function knexModule(options: KnexModuleOptions): ContainerModule {
  return new ContainerModule(({ bind }) => {
    if (!options.knex && !options.connection) {
      throw new Error('knexModule needs { connection } (a Postgres URL) or { knex } (e.g. await pgliteKnex())');
    }
    const db =
      options.knex ??
      knex({
        client: 'pg',
        connection: options.connection!,
        pool: { min: options.pool?.min ?? 2, max: options.pool?.max ?? 10 },
        acquireConnectionTimeout: 10_000,
      });
    const t = tables(options);
    const clock = options.clock ?? Date;
    const uow = new KnexUnitOfWork(db, options.isolationLevel ? { isolationLevel: options.isolationLevel } : {});
    const outbox = new KnexOutbox(uow, t.outbox, clock, options);
    const constants: Array<[symbol | Function, unknown]> = [
      [KNEX, db],
      [TOKENS.UnitOfWork, uow],
      [KnexUnitOfWork, uow],
      [TOKENS.Outbox, outbox],
      [KnexOutbox, outbox],
      [TOKENS.IdempotencyStore, new KnexIdempotencyStore(uow, t.idempotency, clock)],
      [TOKENS.AuditStore, new KnexAuditStore(uow, t.audit, t.auditHeads)],
      [TOKENS.Inbox, new KnexInbox(uow, t.inbox, clock)],
      [TOKENS.JobStore, new KnexJobStore(uow, t.jobs, clock)],
    ];
    for (const [token, value] of constants) bind(token as symbol).toConstantValue(value);
  });
}
