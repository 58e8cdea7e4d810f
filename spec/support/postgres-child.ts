// A second process for the Postgres specs, by MODE:
//   send (default)  sends COUNT moves with one idempotency key, prints their outcomes as one JSON line
//   hang            sends one move and hangs inside its transaction (after the handler wrote), printing HANGING
//   commit-hang     receives stock, commits, and hangs before the relay is woken, printing COMMITTED
//   relay           a relay over the outbox of SCHEMA and RabbitMQ: READY, then on "GO" on stdin publishes until
//                   nothing is pending, and prints PUBLISHED with the ids it published
//   claim-die       claims LIMIT outbox rows with a lease of LEASE_MS, prints CLAIMED, and waits to be killed
import { createInterface } from 'node:readline';
import knex from 'knex';
import { AmqpBus, AmqpConnection } from '../../adapters/amqp/index.js';
import { KnexOutbox, KnexUnitOfWork, tables } from '../../adapters/knex/index.js';
import { createRelay, type MessageBus } from '../../lib/messaging/index.js';
import { withRules } from '../../lib/core/index.js';
import { MoveInventory, ReceiveStock } from '../../samples/inventory/index.js';
import { sampleOnPostgres } from './sample-db.js';

const { DATABASE_URL, SCHEMA, MODE = 'send', KEY, COUNT, BODY } = process.env;
const clerk = { actor: { id: 'clerk-1', roles: ['clerk'] } };
const forever = () => new Promise<never>(() => undefined);

/** The library's outbox in SCHEMA, on a pool of its own. */
function outboxOf(leaseMs?: number) {
  const db = knex({ client: 'pg', connection: DATABASE_URL!, pool: { min: 0, max: 4 } });
  const outbox = new KnexOutbox(
    new KnexUnitOfWork(db),
    tables({ schema: SCHEMA! }).outbox,
    Date,
    leaseMs === undefined ? {} : { claimLeaseMs: leaseMs },
  );
  return { db, outbox };
}

if (MODE === 'hang') {
  // Signals the parent once the business rows (and the key's claim) are written, then never commits: the parent
  // SIGKILLs us.
  const hang = withRules(async function hang(_ctx, next) {
    await next();
    process.stdout.write('HANGING\n');
    return forever();
  }, {});
  const { mediator } = sampleOnPostgres(DATABASE_URL!, SCHEMA!, { inner: [hang] });
  void mediator.send(MoveInventory.from(JSON.parse(BODY!)), { ...clerk, idempotencyKey: KEY });
} else if (MODE === 'commit-hang') {
  // Innermost, so its afterCommit hook runs before publish()'s, which would wake the relay: the rows are committed
  // and nothing of this process will ever publish them (its relay is never started, never woken).
  const stall = withRules(async function stall(ctx, next) {
    const result = await next();
    ctx.afterCommit(() => {
      process.stdout.write('COMMITTED\n');
      return forever();
    });
    return result;
  }, {});
  const { mediator } = sampleOnPostgres(DATABASE_URL!, SCHEMA!, { inner: [stall] });
  void mediator.send(ReceiveStock.from(JSON.parse(BODY!)), { actor: { id: 'manager-1', roles: ['manager'] } });
} else if (MODE === 'relay') {
  const { db, outbox } = outboxOf();
  const connection = new AmqpConnection(process.env.AMQP_URL!);
  // A loaded machine may confirm later than the default 10 s: an unconfirmed batch is rightly published again, but
  // this scenario is about competing claims, so it waits for its confirms rather than count that as a duplicate.
  const bus = new AmqpBus(connection, {
    exchanges: JSON.parse(process.env.EXCHANGES!),
    mandatoryEvents: true,
    confirmTimeoutMs: 60_000,
  });
  const handedToBroker: string[] = [];
  const counting: MessageBus = {
    publish(batch) {
      handedToBroker.push(...batch.map((m) => m.id));
      return bus.publish(batch);
    },
  };
  const relay = createRelay(outbox, counting, { batchSize: Number(process.env.BATCH ?? 100), backoffMs: [20, 200] });
  await bus.publish([]); // opens the confirm channel and declares the exchanges before the race starts
  process.stdout.write('READY\n');
  const lines = createInterface({ input: process.stdin });
  for await (const line of lines) if (line === 'GO') break;
  lines.close();
  relay.start(25); // polls too: rows another relay claimed and lost come back when their lease ends
  while ((await outbox.pending()) > 0) await new Promise((resolve) => setTimeout(resolve, 50));
  await relay.stop();
  await connection.close();
  await db.destroy();
  process.stdout.write(`PUBLISHED ${JSON.stringify(handedToBroker)}\n`);
} else if (MODE === 'claim-die') {
  const { outbox } = outboxOf(Number(process.env.LEASE_MS));
  const claimed = await outbox.claim(Number(process.env.LIMIT));
  process.stdout.write(`CLAIMED ${JSON.stringify(claimed.map((m) => m.id))}\n`);
  await forever();
} else {
  const { db, mediator } = sampleOnPostgres(DATABASE_URL!, SCHEMA!);
  const results = await Promise.all(
    Array.from({ length: Number(COUNT) }, () =>
      mediator
        .send(MoveInventory.from(JSON.parse(BODY!)), { ...clerk, idempotencyKey: KEY })
        .then((r) => (r.ok ? { ok: true, replayed: r.replayed === true } : { ok: false, kind: r.failure.kind }))
        .catch((error: Error) => ({ ok: false, kind: 'exception', message: error.message })),
    ),
  );
  process.stdout.write(`${JSON.stringify(results)}\n`);
  await db.destroy();
}
