// RELIABILITY.md scenarios 8, 14, 17 and 18 on Postgres, RabbitMQ and processes: SIGKILLs, cut connections, relays.
import { randomUUID } from 'node:crypto';
import { Container } from 'inversify';
import { AmqpBus, AmqpConnection } from '../../adapters/amqp/index.js';
import { KnexOutbox, KnexUnitOfWork, knexModule, tables } from '../../adapters/knex/index.js';
import { memoryBusModule } from '../../adapters/memory/index.js';
import { createMediator } from '../../lib/core/index.js';
import { createRelay } from '../../lib/messaging/index.js';
import { recommendedStack } from '../../middleware/index.js';
import { FEATURES } from '../../samples/app.js';
import { ReceiveStock } from '../../samples/inventory/index.js';
import { sqlRepositories } from '../../samples/sql.js';
import { deleteTopology, isolatedTopology, rabbit } from '../support/broker.js';
import { dropSchema, freshSchema } from '../support/db.js';
import { expect } from '../support/helpers.js';
import {
  admin,
  audited,
  bins,
  child,
  clerk,
  count,
  keyRows,
  listen,
  manager,
  move,
  moved,
  named,
  opened,
  q,
  sample,
  schema,
  stock,
  terminator,
  url,
  usePostgresWorld,
  waitUntil,
} from './postgres-world.js';

describe('RELIABILITY scenarios on Postgres, RabbitMQ and processes', function () {
  this.timeout(60_000);
  usePostgresWorld();

  describe('8 · a process SIGKILLed inside its transaction', () => {
    it('should leave no row of any kind, answer in_progress meanwhile, then run the key once', async () => {
      const { mediator: impatient } = sample({ waitMs: 200 });
      const { mediator } = sample();
      const productId = `p8-${randomUUID()}`;
      await stock(mediator, productId, { A: 10 });
      const key = `k8-${randomUUID()}`;
      const app = `scn8-${randomUUID().slice(0, 8)}`;
      const hung = child({
        MODE: 'hang',
        DATABASE_URL: url,
        SCHEMA: schema,
        KEY: key,
        BODY: JSON.stringify({ productId, fromBinId: 'A', toBinId: 'B', qty: 3, reason: 'killed' }),
        PGAPPNAME: app,
      });
      await hung.waitFor(/HANGING/);
      const states = (await q(`SELECT state FROM pg_stat_activity WHERE application_name = ?`, [app])).map(
        (r) => r.state,
      );
      expect(states, 'the child is inside its transaction').to.include('idle in transaction');
      expect(await impatient.send(move(productId), { ...clerk, idempotencyKey: key })).to.have.nested.property(
        'failure.kind',
        'in_progress',
      );

      await hung.kill();
      await waitUntil(
        async () => (await q(`SELECT 1 FROM pg_stat_activity WHERE application_name = ?`, [app])).length === 0,
        'the killed process has no backend left',
      );
      expect(await bins(productId), 'not even the B bin its load created').to.deep.equal({ A: 10 });
      expect(await keyRows(key)).to.equal(0);
      expect(await moved(productId)).to.equal(0);
      expect(await audited('MoveInventory', productId)).to.deep.equal(['in_progress']);

      const run = await mediator.send(move(productId), { ...clerk, idempotencyKey: key });
      expect(run).to.deep.equal({ ok: true, value: { sourceQtyAfter: 7, destQtyAfter: 3 } });
      expect(await mediator.send(move(productId), { ...clerk, idempotencyKey: key })).to.deep.equal({
        ...run,
        replayed: true,
      });
      expect(await bins(productId)).to.deep.equal({ A: 7, B: 3 });
      expect(await moved(productId)).to.equal(1);
      expect(await audited('MoveInventory', productId)).to.deep.equal(['in_progress', 'ok', 'ok:replayed']);
    });
  });

  describe('14 · a process SIGKILLed between its commit and its publish', () => {
    let amqpUrl: string, listener: Awaited<ReturnType<typeof listen>>, connection: AmqpConnection;
    const topology = isolatedTopology();
    const queue = topology.queue('scn14');

    before(async function () {
      const found = await rabbit();
      if (!found) return this.skip();
      amqpUrl = found;
      listener = await listen(amqpUrl, topology.exchanges, queue, '#');
      connection = new AmqpConnection(amqpUrl);
    });
    after(async () => {
      if (!amqpUrl) return;
      await connection.close();
      await listener.model.close();
      await deleteTopology(amqpUrl, topology.exchanges, [queue]);
    });

    it("should publish the row it committed through another process's relay, under its id", async () => {
      const productId = `p14-${randomUUID()}`;
      const killed = child({
        MODE: 'commit-hang',
        DATABASE_URL: url,
        SCHEMA: schema,
        BODY: JSON.stringify({ productId, binId: 'A', qty: 4 }),
      });
      await killed.waitFor(/COMMITTED/);
      await killed.kill();
      const rows = await q(
        `SELECT id, sent_at FROM "$schema".ucc_outbox WHERE type = 'stock.received' AND payload->>'productId' = ?`,
        [productId],
      );
      expect(rows, 'committed, and never published by the killed process').to.have.length(1);
      expect(rows[0].sent_at).to.equal(null);
      const relay = createRelay(
        new KnexOutbox(new KnexUnitOfWork(named('scn14')), tables().outbox),
        new AmqpBus(connection, { exchanges: topology.exchanges, mandatoryEvents: true }),
      );
      try {
        await relay.drain(20_000);
      } finally {
        await relay.stop();
      }
      const ofProduct = () => listener.received.messages.filter((m) => m.payload.productId === productId);
      await listener.received.until(() => ofProduct().length > 0);
      expect(ofProduct().map((m) => m.id)).to.deep.equal([rows[0].id]);
      expect((await q(`SELECT sent_at FROM "$schema".ucc_outbox WHERE id = ?`, [rows[0].id]))[0].sent_at).not.to.equal(
        null,
      );
    });
  });

  describe('17 · a connection cut mid-transaction', () => {
    it('should answer unavailable, keep no claim, run the same key once after, and recover', async () => {
      const cut = terminator();
      const { mediator, container } = sample({ inner: [cut.middleware], pool: 4 });
      cut.bind(container);
      const productId = `p17-${randomUUID()}`;
      await stock(mediator, productId, { A: 100 });
      const key = `k17-${randomUUID()}`;
      cut.arm();
      expect(await mediator.send(move(productId, 2), { ...clerk, idempotencyKey: key })).to.deep.equal({
        ok: false,
        failure: { kind: 'unavailable', message: 'The database is unavailable; nothing was committed — retry later' },
      });
      expect(await bins(productId)).to.deep.equal({ A: 100 });
      expect(await keyRows(key), 'the claim died with its transaction').to.equal(0);
      expect(await moved(productId)).to.equal(0);
      expect(await audited('MoveInventory', productId)).to.deep.equal(['unavailable']);

      const retry = await mediator.send(move(productId, 2), { ...clerk, idempotencyKey: key });
      expect(retry, 'the same key runs: neither in_progress nor a replay').to.deep.equal({
        ok: true,
        value: { sourceQtyAfter: 98, destQtyAfter: 2 },
      });
      const more = await Promise.all(Array.from({ length: 12 }, () => mediator.send(move(productId, 1), clerk)));
      expect(more.map((r) => r.ok)).to.deep.equal(new Array(12).fill(true));
      expect(await bins(productId)).to.deep.equal({ A: 86, B: 14 });
      expect(await moved(productId)).to.equal(13);
    });

    // Connections cut while idle (a Postgres restart, a failover, a proxy's idle timeout) look alive until a BEGIN
    // fails on them: 5 sends on a pool of 5, pg_terminate_backend() on its backends, then 5 sends again.
    it('should answer unavailable, never reject, after the pool lost its idle connections', async () => {
      const app = `scn17-${randomUUID().slice(0, 8)}`;
      const container = new Container();
      const db = named(app, 5);
      opened.push({ db, container }); // its relay is woken by the sends: stopped before the pool closes
      container.load(knexModule({ knex: db }), memoryBusModule(), sqlRepositories());
      const mediator = createMediator(container, {
        handlers: FEATURES.flatMap((f) => f.handlers),
        middleware: recommendedStack({ rules: FEATURES.flatMap((f) => f.rules) }),
      });
      const productId = `p17-${randomUUID()}`;
      const receiveAll = () =>
        Promise.all(
          ['A', 'B', 'C', 'D', 'E'].map((binId) =>
            mediator.send(ReceiveStock.from({ productId, binId, qty: 1 }), manager).catch((error: Error) => error),
          ),
        );
      expect((await receiveAll()).map((r) => !(r instanceof Error) && r.ok)).to.deep.equal(new Array(5).fill(true));
      await admin.raw('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = ?', [app]);
      for (const result of await receiveAll()) {
        expect(result, 'resolved, not rejected').not.to.be.instanceOf(Error);
        if (!(result instanceof Error)) {
          expect(result.ok || result.failure.kind === 'unavailable', JSON.stringify(result)).to.equal(true);
        }
      }
      expect((await receiveAll()).map((r) => !(r instanceof Error) && r.ok)).to.deep.equal(new Array(5).fill(true));
      expect(
        await count(`SELECT count(*) n FROM "$schema".ucc_audit WHERE payload->>'productId' = ?`, [productId]),
      ).to.equal(15);
    });
  });

  describe('18 · competing relays in two processes', () => {
    const ROWS = 5_000;
    let amqpUrl: string, listener: Awaited<ReturnType<typeof listen>>, relaySchema: string;
    const topology = isolatedTopology();
    const queue = topology.queue('scn18');

    before(async function () {
      const found = await rabbit();
      if (!found) return this.skip();
      amqpUrl = found;
      relaySchema = (await freshSchema(admin)).schema;
      listener = await listen(amqpUrl, topology.exchanges, queue, 'scn.relayed');
    });
    after(async () => {
      if (!amqpUrl) return;
      await listener.model.close().catch(() => undefined);
      await deleteTopology(amqpUrl, topology.exchanges, [queue]);
      await dropSchema(admin, relaySchema);
    });

    it('should publish 5,000 rows once each through two relays and a killed claimer, in order', async () => {
      const outbox = `${relaySchema}.ucc_outbox`;
      // 40 aggregates, and every tenth row without one; `n` is the order rows were written in.
      await admin.raw(
        `INSERT INTO ?? (id, kind, type, payload, occurred_at, aggregate_id, headers)
         SELECT gen_random_uuid()::text, 'event', 'scn.relayed', jsonb_build_object('n', g, 'aggregate', a), now(), a,
                '{}'::jsonb
         FROM generate_series(1, ?) g, LATERAL (SELECT CASE WHEN g % 10 = 0 THEN NULL ELSE 'agg-' || g % 40 END a) x
         ORDER BY g`,
        [outbox, ROWS],
      );
      const ids: string[] = (await admin(outbox).orderBy('position').pluck('id')) as string[];
      const env = { DATABASE_URL: url, SCHEMA: relaySchema, AMQP_URL: amqpUrl };

      // A relay that claims 100 rows and dies holding them: its lease must run out before they go out.
      const dead = child({ ...env, MODE: 'claim-die', LIMIT: '100', LEASE_MS: '10000' }); // past two relays' start
      const stale: string[] = JSON.parse((await dead.waitFor(/^CLAIMED (.*)\n/m))[1]!);
      expect(stale).to.have.length(100);
      await dead.kill();

      const relays = [1, 2].map(() =>
        child({ ...env, MODE: 'relay', EXCHANGES: JSON.stringify(topology.exchanges), BATCH: '100' }),
      );
      await Promise.all(relays.map((r) => r.waitFor(/READY/)));
      expect(
        await count(`SELECT count(*) n FROM ?? WHERE id = ANY(?::text[]) AND claimed_until > ?`, [
          outbox,
          stale,
          Date.now(),
        ]),
        'still leased to the dead claimer when the relays start',
      ).to.equal(100);
      for (const r of relays) r.send('GO');
      const published: string[][] = await Promise.all(
        relays.map(async (r) => JSON.parse((await r.waitFor(/^PUBLISHED (.*)\n/m))[1]!)),
      );
      await Promise.all(relays.map((r) => r.exited));

      const all = published.flat();
      expect(
        published.map((p) => p.length > 0),
        'both relays took part',
      ).to.deep.equal([true, true]);
      expect(all, 'each row handed to the broker once, by one relay').to.have.length(ROWS);
      expect(new Set(all).size).to.equal(ROWS);
      expect(
        stale.every((id) => all.includes(id)),
        "the dead claimer's rows were reclaimed",
      ).to.equal(true);
      expect(
        await count(`SELECT count(*) n FROM ?? WHERE sent_at IS NULL OR parked_at IS NOT NULL`, [outbox]),
      ).to.equal(0);

      const { received } = listener;
      await received.until(() => received.messages.length >= ROWS);
      await listener.channel.close(); // anything delivered but not yet seen goes back to the queue
      const check = await listener.model.createChannel();
      const { messageCount } = await check.checkQueue(queue);
      expect(messageCount, 'no message beyond the 5,000').to.equal(0);
      expect(received.messages).to.have.length(ROWS);
      expect(new Set(received.messages.map((m) => m.id))).to.deep.equal(new Set(ids));
      const order = new Map<string, number[]>();
      for (const { payload } of received.messages)
        if (payload.aggregate !== null)
          order.set(payload.aggregate, [...(order.get(payload.aggregate) ?? []), payload.n]);
      expect(order.size).to.equal(36); // agg-0 … agg-39 minus the four whose rows all fall on a tenth row
      for (const [aggregate, ns] of order)
        expect(ns, `${aggregate} in the order written`).to.deep.equal([...ns].sort((a, b) => a - b));
    });
  });
});
