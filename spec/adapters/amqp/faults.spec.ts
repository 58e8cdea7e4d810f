// Faults on the real broker: a process killed before publishing, the broker stopped mid-load, connections closed.
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import type { Knex } from 'knex';
import { AmqpSource } from '../../../adapters/amqp/index.js';
import { TOKENS, type Mediator } from '../../../lib/core/index.js';
import { consume, type RunningRelay } from '../../../lib/messaging/index.js';
import { deleteTopology, isolatedTopology, rabbit } from '../../support/broker.js';
import { postgres } from '../../support/db.js';
import { expect } from '../../support/helpers.js';
import { createSchema, scopedKnex } from '../../support/sample-db.js';
import { Emit, Emitted, createEffectsTable, faultApp, received } from './app.js';
import { closeConnectionsNamed, rabbitmqctl } from '../../support/rabbitmqctl.js';

const CHILD = fileURLToPath(new URL('./child.ts', import.meta.url));

/** Polls `done` (a process we do not control is doing the work) until it holds or `timeoutMs` passes. */
async function waitUntil(done: () => boolean, timeoutMs: number): Promise<void> {
  for (const deadline = Date.now() + timeoutMs; !done(); await new Promise((resolve) => setTimeout(resolve, 25))) {
    if (Date.now() > deadline) throw new Error(`not done within ${timeoutMs} ms`);
  }
}

describe('RabbitMQ faults', function () {
  this.timeout(180_000);
  let amqpUrl: string, pgUrl: string, schema: string, db: Knex, admin: Knex;
  const topology = isolatedTopology();
  const queue = topology.queue('emitted');
  let app: ReturnType<typeof faultApp>;
  let relay: RunningRelay;

  before(async function () {
    const [broker, pg] = [await rabbit(), await postgres()];
    if (!broker || !pg) return this.skip();
    [amqpUrl, admin, pgUrl] = [broker, pg, process.env.DATABASE_URL!];
    schema = `amqpspec_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
    await createSchema(pgUrl, schema);
    db = scopedKnex(pgUrl, schema, 10);
    await createEffectsTable(db);
    app = faultApp(db, amqpUrl, topology.exchanges, { amqp: { connectionName: topology.prefix } });
    relay = app.container.get<RunningRelay>(TOKENS.Relay);
    await consume(app.mediator, app.container.get(AmqpSource), queue, [Emitted], { prefetch: 32 });
  });

  after(async () => {
    if (!db) return;
    await relay.stop();
    await app.connection.close();
    await deleteTopology(amqpUrl, topology.exchanges, [queue]);
    await db.destroy();
    await admin.raw('DROP SCHEMA IF EXISTS ?? CASCADE', [schema]);
  });

  const settled = async (timeoutMs = 30_000) => {
    await relay.drain(timeoutMs);
    await app.container.get(AmqpSource).idle();
  };
  const sendAll = (mediator: Mediator, ids: readonly string[], pad = 0) =>
    Promise.all(ids.map((id) => mediator.send(Emit.from({ id, pad }))));

  it("should deliver, through another process's relay, what a process committed before it was SIGKILLed", async () => {
    const prefix = `killed-${randomUUID().slice(0, 8)}`;
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD], {
      env: {
        ...process.env,
        DATABASE_URL: pgUrl,
        SCHEMA: schema,
        AMQP_URL: amqpUrl,
        EXCHANGES: JSON.stringify(topology.exchanges),
        COUNT: '20',
        PREFIX: prefix,
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk;
    });
    while (!out.includes('COMMITTED')) await once(child.stdout, 'data');
    child.kill('SIGKILL');
    await once(child, 'exit');
    relay.wake(); // the surviving process's relay (it also polls: relay.start())
    await settled();
    expect(received.filter((id) => id.startsWith(prefix))).to.have.length(20);
  });

  it('should publish from a relay running as its own process (usecasecore relay)', async () => {
    const { mediator } = faultApp(db, amqpUrl, topology.exchanges, { relay: false }); // this process never publishes
    const cli = spawn(
      process.execPath,
      ['--import', 'tsx', fileURLToPath(new URL('../../../adapters/cli/main.ts', import.meta.url)), 'relay'],
      {
        env: {
          ...process.env,
          DATABASE_URL: pgUrl,
          AMQP_URL: amqpUrl,
          UCC_SCHEMA: schema,
          UCC_EXCHANGES: topology.prefix,
          RELAY_POLL_MS: '50',
        },
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    try {
      await once(cli.stdout, 'data'); // its start-up line
      const ids = Array.from({ length: 10 }, (_, i) => `cli-${i}-${randomUUID().slice(0, 6)}`);
      await sendAll(mediator, ids);
      await waitUntil(() => ids.every((id) => received.includes(id)), 20_000);
      expect(received).to.include.members(ids);
    } finally {
      cli.kill('SIGTERM');
      await once(cli, 'exit');
    }
  });

  it('should accept 1,000 sends while the broker is stopped, keep the backlog in the database, and deliver all after it is back', async () => {
    const ids = Array.from({ length: 1_000 }, (_, i) => `outage-${i}-${randomUUID().slice(0, 6)}`);
    rabbitmqctl('stop_app');
    try {
      global.gc?.();
      const heapBefore = process.memoryUsage().heapUsed;
      const results = await sendAll(app.mediator, ids, 10_000); // 10 kB each: ~10 MB if anything buffered them
      expect(
        results.every((r) => r.ok),
        JSON.stringify(results.find((r) => !r.ok)),
      ).to.equal(true);
      for (let i = 0; i < 5; i++) await relay.drain(300).catch(() => undefined); // let the relay fail a few passes
      global.gc?.();
      const grown = process.memoryUsage().heapUsed - heapBefore;
      expect(grown, `heap grew ${(grown / 1e6).toFixed(1)} MB`).to.be.below(5e6);
      const [{ n }] = (await db.raw(`SELECT count(*) n FROM ucc_outbox WHERE sent_at IS NULL AND parked_at IS NULL`))
        .rows;
      expect(Number(n)).to.equal(1_000);
    } finally {
      rabbitmqctl('start_app');
      rabbitmqctl('await_startup');
    }
    await settled(120_000);
    const delivered = new Set(received.filter((id) => id.startsWith('outage-')));
    expect(delivered.size).to.equal(1_000);
    const [{ parked }] = (await db.raw(`SELECT count(*) parked FROM ucc_outbox WHERE parked_at IS NOT NULL`)).rows;
    expect(Number(parked), 'an outage parks nothing').to.equal(0);
  });

  it('should reconnect the publisher and resume consumers after the broker closes every connection', async () => {
    const before = [`drop-a-${randomUUID()}`];
    await sendAll(app.mediator, before);
    await settled();
    // Only this app's connections: other clients of the machine's broker are left alone.
    expect(closeConnectionsNamed(topology.prefix)).to.be.at.least(1);
    const after = [`drop-b-${randomUUID()}`, `drop-c-${randomUUID()}`];
    await sendAll(app.mediator, after);
    await settled();
    expect(received).to.include.members([...before, ...after]);
  });
});
