// The knex adapters (Postgres, or PGlite through knex-pglite) and the Inversify module that binds them.
import { ContainerModule, type ServiceIdentifier } from 'inversify';
import knex, { type Knex } from 'knex';
import type { Clock } from '../../lib/core/ports.js';
import { UseCaseError } from '../../lib/core/errors.js';
import { TOKENS } from '../../lib/core/tokens.js';
import { KnexAuditStore } from './audit-store.js';
import { KnexIdempotencyStore } from './idempotency-store.js';
import { KnexInbox } from './inbox.js';
import { KnexJobStore } from './job-store.js';
import { KnexProcessStore } from './process-store.js';
import { KnexOutbox, type KnexOutboxOptions } from './outbox.js';
import { tables, type TableOptions } from './tables.js';
import { KnexUnitOfWork } from './unit-of-work.js';

export { KnexAuditStore, type AuditProblem, type AuditVerification } from './audit-store.js';
export { KnexIdempotencyStore } from './idempotency-store.js';
export { KnexInbox } from './inbox.js';
export { KnexJobStore, type JobQuery } from './job-store.js';
export { KnexProcessStore, type ProcessTables } from './process-store.js';
export {
  KnexOutbox,
  type KnexOutboxOptions,
  type OutboxStatus,
  type OutboxTypeStatus,
  type ParkedRow,
} from './outbox.js';
export { cursor, type CursorOptions } from './cursor.js';
export { pgliteKnex } from './pglite.js';
export { migrate, pendingMigrations, type PendingMigration } from './migrations.js';
export { tables, type TableOptions, type Tables } from './tables.js';
export { KnexUnitOfWork } from './unit-of-work.js';

/** The Inversify token of the module's knex instance (destroy it on shutdown). */
export const KNEX = Symbol.for('usecasecore.Knex');

/** Options of `knexModule()`: a Postgres connection, or a knex instance of your own (e.g. `await pgliteKnex()`). */
export interface KnexModuleOptions extends TableOptions, KnexOutboxOptions {
  readonly connection?: string | Knex.PgConnectionConfig;
  readonly knex?: Knex;
  /** Pool size for `connection`. Default 2–10. */
  readonly pool?: { readonly min?: number; readonly max?: number };
  /** The clock leases, TTLs, claims and record times are judged by, bound as `TOKENS.Clock`. Default `Date`. */
  readonly clock?: Clock;
  /** Transaction isolation. Default read committed (with row locks); `serializable` relies on the retries. */
  readonly isolationLevel?: Knex.IsolationLevels;
}

/**
 * Binds the unit of work, idempotency, audit, outbox, inbox and job stores to Postgres through knex, and `TOKENS.Clock`
 * (`clock`, default `Date`) unless one is bound already: every store, the mediator, the sealer and retention read
 * that one clock. Run `migrate(knex)` (or `npm run migrate`) once before use. Pair it with a bus module
 * (`memoryBusModule()`, `amqpModule(...)`).
 * @example container.load(knexModule({ connection: process.env.DATABASE_URL }), memoryBusModule());
 */
export function knexModule(options: KnexModuleOptions): ContainerModule {
  return new ContainerModule(({ bind, isBound }) => {
    if (!options.knex && !options.connection) {
      throw new UseCaseError(
        'misuse',
        'knexModule needs { connection } (a Postgres URL) or { knex } (e.g. await pgliteKnex())',
      );
    }
    if (options.clock && isBound(TOKENS.Clock)) {
      throw new UseCaseError(
        'misuse',
        'knexModule({ clock }): a Clock is bound already — give the clock once, to knexModule or to TOKENS.Clock',
      );
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
    const uow = new KnexUnitOfWork(db, options.isolationLevel ? { isolationLevel: options.isolationLevel } : {});
    if (!isBound(TOKENS.Clock)) bind(TOKENS.Clock).toConstantValue(options.clock ?? Date);
    bind(KNEX).toConstantValue(db);
    bind(KnexUnitOfWork).toConstantValue(uow);
    bind(TOKENS.UnitOfWork).toService(KnexUnitOfWork);
    bind(TOKENS.AuditStore).toConstantValue(new KnexAuditStore(uow, t.audit, t.auditHeads));
    const clocked = <T>(token: ServiceIdentifier<T>, make: (clock: Clock) => T) =>
      bind(token).toResolvedValue(make, [TOKENS.Clock]).inSingletonScope();
    clocked(KnexOutbox, (clock) => new KnexOutbox(uow, t.outbox, clock, options));
    bind(TOKENS.Outbox).toService(KnexOutbox);
    clocked(TOKENS.IdempotencyStore, (clock) => new KnexIdempotencyStore(uow, t.idempotency, clock));
    clocked(TOKENS.Inbox, (clock) => new KnexInbox(uow, t.inbox, clock));
    clocked(TOKENS.JobStore, (clock) => new KnexJobStore(uow, t.jobs, clock));
    clocked(TOKENS.ProcessStore, (clock) => new KnexProcessStore(uow, t, clock));
  });
}
