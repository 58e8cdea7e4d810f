// A second process for the Postgres specs: sends moves with one idempotency key, or hangs inside the transaction.
import { withRules } from '../../lib/index.js';
import { MoveInventory } from '../../samples/inventory/index.js';
import { sampleOnPostgres } from './sample-db.js';

const { DATABASE_URL, SCHEMA, MODE, KEY, COUNT, BODY } = process.env;
const body = JSON.parse(BODY!);
const clerk = { actor: { id: 'clerk-1', roles: ['clerk'] } };

if (MODE === 'hang') {
  // Signals the parent once the business rows (and the key's claim) are written, then never commits: the parent
  // SIGKILLs us.
  const hang = withRules(async function hang(_ctx, next) {
    await next();
    process.stdout.write('HANGING\n');
    return new Promise<never>(() => undefined);
  }, {});
  const { mediator } = sampleOnPostgres(DATABASE_URL!, SCHEMA!, { inner: [hang] });
  void mediator.send(MoveInventory.from(body), { ...clerk, idempotencyKey: KEY });
} else {
  const { db, mediator } = sampleOnPostgres(DATABASE_URL!, SCHEMA!);
  const results = await Promise.all(
    Array.from({ length: Number(COUNT) }, () =>
      mediator
        .send(MoveInventory.from(body), { ...clerk, idempotencyKey: KEY })
        .then((r) => (r.ok ? { ok: true, replayed: r.replayed === true } : { ok: false, kind: r.failure.kind }))
        .catch((error: Error) => ({ ok: false, kind: 'exception', message: error.message })),
    ),
  );
  process.stdout.write(`${JSON.stringify(results)}\n`);
  await db.destroy();
}
