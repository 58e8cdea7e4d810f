// Runs every port contract against the knex adapters on one database (PGlite or Postgres).
import type { Knex } from 'knex';
import {
  KnexAuditStore,
  KnexIdempotencyStore,
  KnexInbox,
  KnexJobStore,
  KnexProcessStore,
  KnexOutbox,
  KnexUnitOfWork,
  tables,
} from '../../../adapters/knex/index.js';
import {
  runAuditStoreContract,
  runIdempotencyStoreContract,
  runInboxContract,
  runJobStoreContract,
  runProcessStoreContract,
  runOutboxContract,
  runUnitOfWorkContract,
  type Probe,
} from '../../../lib/testing/index.js';
import { dropSchema, freshSchema } from '../../support/db.js';

/** Registers the contract suites for a database that `open` provides; the suite skips when it gives undefined. */
export function knexContracts(name: string, open: () => Promise<Knex | undefined>): void {
  const mocha = { describe, it };
  let db: Knex;
  before(async function () {
    const found = await open();
    if (!found) return this.skip();
    db = found;
  });
  /** A schema of its own for each case, dropped when the case closes its fixture. */
  const withSchema = async () => {
    const options = await freshSchema(db);
    const uow = new KnexUnitOfWork(db);
    return { uow, t: tables(options), schema: options.schema, close: () => dropSchema(db, options.schema) };
  };

  runUnitOfWorkContract(mocha, name, async () => {
    const { uow, schema, close } = await withSchema();
    const probeTable = `${schema}.probe`;
    await db.schema.withSchema(schema).createTable('probe', (table) => {
      table.text('key').primary();
      table.integer('value').notNullable();
    });
    const probe: Probe = {
      async read(key, lock) {
        const q = (await uow.db())(probeTable).where({ key }).first();
        const row = await (lock ? q.forUpdate() : q);
        return row?.value;
      },
      async write(key, value) {
        await (await uow.db())(probeTable).insert({ key, value }).onConflict('key').merge();
      },
    };
    return { uow, close, probe };
  });
  runIdempotencyStoreContract(mocha, name, async (clock) => {
    const { uow, t, close } = await withSchema();
    return { uow, close, store: new KnexIdempotencyStore(uow, t.idempotency, clock) };
  });
  runAuditStoreContract(mocha, name, async () => {
    const { uow, t, close } = await withSchema();
    return { uow, close, store: new KnexAuditStore(uow, t.audit, t.auditHeads) };
  });
  runOutboxContract(
    mocha,
    name,
    async (clock) => {
      const { uow, t, close } = await withSchema();
      return { uow, close, outbox: new KnexOutbox(uow, t.outbox, clock) };
    },
    { purgeSent: true },
  );
  runInboxContract(
    mocha,
    name,
    async (clock) => {
      const { uow, t, close } = await withSchema();
      return { uow, close, inbox: new KnexInbox(uow, t.inbox, clock) };
    },
    { purge: true },
  );
  runJobStoreContract(
    mocha,
    name,
    async (clock) => {
      const { uow, t, close } = await withSchema();
      return { uow, close, store: new KnexJobStore(uow, t.jobs, clock) };
    },
    { purge: true },
  );
  runProcessStoreContract(
    mocha,
    name,
    async (clock) => {
      const { uow, t, close } = await withSchema();
      return { uow, close, store: new KnexProcessStore(uow, t, clock) };
    },
    { purge: true },
  );
}
