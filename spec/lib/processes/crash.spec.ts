// A checkout's worker SIGKILLed before a step, inside one, after its commit and inside a compensation, on Postgres
// and RabbitMQ: another worker carries the process on, and every effect happens exactly once.
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import knex, { type Knex } from 'knex';
import { AmqpConnection } from '../../../adapters/amqp/index.js';
import { TOKENS, typeOf, unwrap } from '../../../lib/core/index.js';
import type { RunningRelay } from '../../../lib/messaging/index.js';
import { GetProcess, type ProcessRecord } from '../../../lib/processes/index.js';
import { deleteTopology, isolatedTopology, realServices } from '../../support/broker.js';
import { dropSchema, freshSchema } from '../../support/db.js';
import { expect } from '../../support/helpers.js';
import { spawnChild, type Child } from '../../support/processes.js';
import { Checkout, KnexShop, PaymentConfirmed, SHOP, type Shop } from './checkout.js';
import { ann, checkoutApp, knexContainer } from './world.js';

const CHILD = fileURLToPath(new URL('./child.ts', import.meta.url));

/** Where the first worker dies, the card that takes the checkout there, and how the process must end. */
const CASES = [
  { at: 'Reserve:commit', card: '4242', ends: 'completed', effects: { reserve: 1, charge: 1, ship: 1, release: 0 } },
  { at: 'Charge', card: '4242', ends: 'completed', effects: { reserve: 1, charge: 1, ship: 1, release: 0 } },
  { at: 'Charge:commit', card: '4242', ends: 'completed', effects: { reserve: 1, charge: 1, ship: 1, release: 0 } },
  { at: 'Release', card: 'decline', ends: 'compensated', effects: { reserve: 1, charge: 0, ship: 0, release: 1 } },
] as const;

describe('processes: a worker SIGKILLed mid-process (Postgres + RabbitMQ, real processes)', function () {
  this.timeout(90_000);
  const services = realServices();
  let db: Knex;
  before(() => {
    db = knex({ client: 'pg', connection: services.pgUrl, pool: { min: 0, max: 4 } });
    services.cleanups.push(() => db.destroy());
  });

  for (const { at, card, ends, effects } of CASES) {
    it(`should carry on in another worker, each effect once, when one dies at ${at}`, async () => {
      const { schema } = await freshSchema(db);
      await KnexShop.create(db, schema);
      const topology = isolatedTopology();
      const env = {
        DATABASE_URL: services.pgUrl,
        SCHEMA: schema,
        AMQP_URL: services.amqpUrl,
        EXCHANGES: JSON.stringify(topology.exchanges),
        SERVICE: topology.prefix,
      };
      const children: Child[] = [];
      const container = knexContainer(db, schema, undefined, { url: services.amqpUrl, exchanges: topology.exchanges });
      const { mediator, queues } = await checkoutApp(container, topology.prefix, false);
      try {
        const doomed = spawnChild(CHILD, { ...env, KILL_AT: at }, { stdin: 'ignore' });
        children.push(doomed);
        await doomed.waitFor(/WORKING/);
        const orderId = `crash-${randomUUID().slice(0, 8)}`;
        const { processId } = unwrap(await mediator.send(new Checkout({ orderId, qty: 1, card }), ann));
        await doomed.waitFor(new RegExp(`AT ${at}`));
        await doomed.kill();
        const heir = spawnChild(CHILD, { ...env, KILL_AT: '' }, { stdin: 'ignore' });
        children.push(heir);
        const ended = await until(mediator, processId, (p) => p.state === ends);
        expect(ended.steps.filter((s) => s.state === 'failed').length).to.equal(ends === 'completed' ? 0 : 1);
        const shop = container.get<Shop>(SHOP);
        const counted = Object.fromEntries(
          await Promise.all(Object.keys(effects).map(async (e) => [e, await shop.count(`${e}:${orderId}`)] as const)),
        );
        expect(counted, 'each effect exactly once').to.deep.equal(effects);
      } finally {
        await Promise.all(children.map((child) => child.kill()));
        await container.get<RunningRelay>(TOKENS.Relay).stop();
        await container.get(AmqpConnection).close();
        const waits = `${topology.prefix}.processes.${typeOf(PaymentConfirmed)}`; // the children's subscriber queue
        await deleteTopology(services.amqpUrl, topology.exchanges, [...queues, waits]);
        await dropSchema(db, schema);
      }
    });
  }
});

/** Polls the process until `done` holds (or fails after 60 s, with the process as it was). */
async function until(
  mediator: Awaited<ReturnType<typeof checkoutApp>>['mediator'],
  processId: string,
  done: (p: ProcessRecord) => boolean,
): Promise<ProcessRecord> {
  let last: ProcessRecord | undefined;
  for (const deadline = Date.now() + 60_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 100))) {
    last = unwrap(await mediator.send(new GetProcess({ processId }), ann));
    if (done(last)) return last;
  }
  return expect.fail(`process ${processId} did not end as expected: ${JSON.stringify(last)}`);
}
