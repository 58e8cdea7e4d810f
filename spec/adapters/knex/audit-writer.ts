// A process that appends audit records of one tenant through the knex unit of work, many transactions at once, while
// its own sealer runs: spec/postgres/audit-seal.spec.ts runs two of these against one schema (RELIABILITY.md #29).
//   node --import tsx spec/postgres/audit-writer.ts <url> <schema> <tenant> <count>
import { randomUUID } from 'node:crypto';
import knex from 'knex';
import { KnexAuditStore, KnexUnitOfWork, tables } from '../../../adapters/knex/index.js';
import { auditSealer } from '../../../lib/audit/index.js';

const [url, schema, tenant, count] = process.argv.slice(2);
const db = knex({ client: 'pg', connection: url!, pool: { min: 0, max: 8 } });
const t = tables({ schema: schema! });
const uow = new KnexUnitOfWork(db);
const store = new KnexAuditStore(uow, t.audit, t.auditHeads);
const sealer = auditSealer(store, { everyMs: 20 });
let next = 0;
const append = async () => {
  for (let n = next++; n < Number(count); n = next++) {
    await uow.transaction(
      async () => {
        await uow.db(); // a real transaction, begun before the append joins it
        await store.append({
          id: randomUUID(),
          at: new Date().toISOString(),
          tenant: tenant!,
          actor: `pid-${process.pid}`,
          type: 'Write',
          requestId: randomUUID(),
          outcome: 'ok',
          payload: { n, pid: process.pid },
        });
      },
      () => true,
    );
  }
};
try {
  await Promise.all(Array.from({ length: 8 }, append));
} finally {
  await sealer.stop();
  await db.destroy();
}
