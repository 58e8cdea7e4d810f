// Runs every port contract against the knex adapters on one database (PGlite or Postgres).
import type { Knex } from 'knex';
import { KnexAuditStore, KnexIdempotencyStore, KnexInbox, KnexOutbox, KnexUnitOfWork, tables } from '../../adapters/knex/index.js';
import { dropSchema, freshSchema } from '../db.js';
import { auditStoreContract } from './audit-store.contract.js';
import { idempotencyStoreContract } from './idempotency-store.contract.js';
import { inboxContract } from './inbox.contract.js';
import { outboxContract } from './outbox.contract.js';
import { unitOfWorkContract } from './unit-of-work.contract.js';

/** Registers the contract suites for a database that `open` provides; the suite skips when it gives undefined. */
export function knexContracts(name: string, open: () => Promise<Knex | undefined>): void {
  let db: Knex;
  before(async function () {
    const found = await open();
    if (!found) return this.skip();
    db = found;
  });
  const withSchema = async () => {
    const options = await freshSchema(db);
    return { uow: new KnexUnitOfWork(db), t: tables(options), schema: options.schema, close: () => dropSchema(db, options.schema) };
  };

  unitOfWorkContract(name, async () => {
    const { uow, schema, close } = await withSchema();
    const probe = `${schema}.probe`;
    await db.schema.withSchema(schema).createTable('probe', (table) => { table.text('key').primary(); table.integer('value').notNullable(); });
    return {
      uow, close,
      probe: {
        async read(key, lock) {
          const q = (await uow.db())(probe).where({ key }).first();
          const row = await (lock ? q.forUpdate() : q);
          return row?.value;
        },
        async write(key, value) {
          await (await uow.db())(probe).insert({ key, value }).onConflict('key').merge();
        },
      },
    };
  });
  idempotencyStoreContract(name, async (clock) => {
    const { uow, t, close } = await withSchema();
    return { uow, close, store: new KnexIdempotencyStore(uow, t.idempotency, clock) };
  });
  auditStoreContract(name, async () => {
    const { uow, t, close } = await withSchema();
    return { uow, close, store: new KnexAuditStore(uow, t.audit, t.auditHeads) };
  });
  outboxContract(name, async () => {
    const { uow, t, close } = await withSchema();
    return { uow, close, outbox: new KnexOutbox(uow, t.outbox) };
  });
  inboxContract(name, async () => {
    const { uow, t, close } = await withSchema();
    return { uow, close, inbox: new KnexInbox(uow, t.inbox) };
  });
}
