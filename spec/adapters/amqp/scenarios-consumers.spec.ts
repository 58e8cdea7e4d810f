// RELIABILITY.md scenarios 22, 24 and 25 on RabbitMQ and Postgres: dropped connections, killed and racing consumers.
import { queueNames } from '../../../lib/core/queues.js';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import type { Channel, ChannelModel } from 'amqplib';
import type { AmqpRole } from '../../../adapters/amqp/index.js';
import { withRules } from '../../../lib/core/index.js';
import type { MessageSource, OutboxMessage } from '../../../lib/messaging/index.js';
import { expect } from '../../support/helpers.js';
import { rabbitmqctl } from '../../support/rabbitmqctl.js';
import { Emit, Emitted, Ship } from './app.js';
import { admin, queueState, until, useServices, withChannel, world } from './scenarios-world.js';

/** The source, telling each delivery (its Emit id, redelivered flag) and what the consumer made of it. */
function recording(log: Array<{ id: string; redelivered: boolean; action: string }>) {
  return (source: MessageSource): MessageSource => ({
    idle: () => source.idle(),
    consume: (options, handle) =>
      source.consume(options, async (delivery) => {
        const disposition = await handle(delivery);
        const { id } = delivery.message.payload as { id: string };
        log.push({ id, redelivered: delivery.redelivered, action: disposition.action });
        return disposition;
      }),
  });
}

describe('RabbitMQ scenarios (RELIABILITY.md)', function () {
  this.timeout(60_000); // each takes 1–4 s; child processes start slowly on a loaded machine
  useServices();

  describe('22: connection drop', () => {
    it('22: should reconnect once, ack nothing of the old channel on the new one, and resume consuming', async () => {
      let gate: { id: string; reached: () => void; release: Promise<void> } | undefined;
      const w = await world({
        inner: [
          withRules(async function holdOne(ctx, next) {
            const held = gate;
            // Only the consumer's send of that message (the producer's Emit carries the same id).
            if (held && ctx.meta.message && (ctx.request as unknown as { id: string }).id === held.id) {
              held.reached();
              await held.release;
            }
            return next();
          }, {}),
        ],
      });
      const opens: Record<AmqpRole, number> = { publish: 0, consume: 0 };
      const channelErrors: string[] = [];
      w.app.connection.on('open', (role: AmqpRole, model: ChannelModel) => {
        opens[role]++;
        // Hears every channel of the connection: an ack with an unknown tag closes one with 406 PRECONDITION_FAILED.
        for (const method of ['createChannel', 'createConfirmChannel'] as const) {
          const create = model[method].bind(model) as () => Promise<Channel>;
          (model as unknown as Record<string, unknown>)[method] = async () => {
            const channel = await create();
            channel.on('error', (error: Error) => channelErrors.push(error.message));
            return channel;
          };
        }
      });
      const deliveries: Array<{ id: string; redelivered: boolean; action: string }> = [];
      await w.consume(recording(deliveries));
      await w.send('22-warm', 1);
      await w.settled();
      expect(opens).to.deep.equal({ publish: 1, consume: 1 });

      const id = `22-held-${randomUUID()}`;
      let reached!: () => void;
      let release!: () => void;
      const handling = new Promise<void>((resolve) => (reached = resolve));
      gate = { id, reached, release: new Promise<void>((resolve) => (release = resolve)) };
      expect((await w.app.mediator.send(Emit.from({ id }))).ok).to.equal(true);
      await handling; // the delivery is in its handler, unacked
      const consumerBack = new Promise<void>((resolve) =>
        w.app.connection.on('open', (role: AmqpRole) => role === 'consume' && resolve()),
      );
      expect(w.dropConnections(), 'connections closed').to.equal(2);
      await consumerBack;
      release(); // commits now, then its ack would go to a channel that is gone
      const after = await w.send('22-after', 2);
      await w.settled();

      // The handler finished on the old channel (its ack went nowhere); the broker redelivered the message on the
      // new one, where the inbox found it done.
      expect(deliveries.filter((d) => d.id === id)).to.have.deep.members([
        { id, redelivered: false, action: 'ack' },
        { id, redelivered: true, action: 'ack' },
      ]);
      expect((await w.effectsOf([id])).length, 'the held message took effect').to.equal(1);
      expect((await w.effectsOf(after)).length).to.equal(2);
      expect(opens, 'one reconnect of each').to.deep.equal({ publish: 2, consume: 2 });
      expect(channelErrors.filter((e) => /PRECONDITION_FAILED|delivery tag/.test(e))).to.deep.equal([]);
      expect(await queueState(w.queue)).to.deep.include({ messageCount: 0, consumerCount: 1 });
    });

    it('22: should declare a job queue again after a drop, so the next job is not returned as unroutable', async () => {
      const w = await world();
      const jobQueue = queueNames(w.topology.exchanges).job(Ship.name);
      w.queues.push(jobQueue);
      await w.send('22-job', 1, { job: true });
      await w.relay.drain(10_000);
      const lost = once(w.app.connection, 'lost');
      expect(w.dropConnections()).to.equal(1); // only the publishing connection was open
      await lost;
      await withChannel((channel) => channel.deleteQueue(jobQueue)); // the broker lost it meanwhile
      const ids = await w.send('22-job-after', 1, { job: true });
      await w.relay.drain(10_000);
      expect((await queueState(jobQueue)).messageCount).to.equal(1);
      const rows = await w.outboxOf(ids);
      expect(rows.map((r) => [r.kind, r.sent_at !== null, r.parked_at])).to.deep.equal([
        ['event', true, null],
        ['job', true, null],
      ]);
    });

    it('22: should declare its queue again and keep consuming when the broker cancels the consumer', async () => {
      const w = await world();
      await w.consume();
      await w.send('22-cancel-warm', 1);
      await w.settled();
      await withChannel((channel) => channel.deleteQueue(w.queue));
      await until('the consumer back on its queue', async () => {
        const state = await withChannel((channel) => channel.checkQueue(w.queue)).catch(() => undefined);
        return state?.consumerCount === 1;
      });
      const ids = await w.send('22-cancel-after', 3);
      await w.settled();
      expect((await w.effectsOf(ids)).length).to.equal(3);
    });

    it('22: should keep queued messages across a broker restart (durable queues, persistent messages)', async () => {
      const w = await world();
      const consumer = await w.consume(); // declares the queue
      await consumer.close();
      const ids = await w.send('22-restart', 5);
      await w.relay.drain(10_000);
      expect((await queueState(w.queue)).messageCount).to.equal(5);
      rabbitmqctl('stop_app');
      try {
        expect(await withChannel(() => Promise.resolve('connected')).catch(() => 'refused')).to.equal('refused');
      } finally {
        rabbitmqctl('start_app');
        rabbitmqctl('await_startup');
      }
      expect((await queueState(w.queue)).messageCount, 'after the restart').to.equal(5);
      await w.consume();
      await w.settled();
      expect((await w.effectsOf(ids)).length).to.equal(5);
    });
  });

  describe('24: a consumer process killed before its ack', () => {
    it('24: should redeliver what a SIGKILLed consumer committed but never acked, and take effect once', async () => {
      const w = await world();
      const child = w.child({ MODE: 'consume', HANG: 'after-commit' });
      await child.waitFor(/READY/);
      const [id] = await w.send('24-committed', 1);
      const messageId = (await child.waitFor(/COMMITTED (\S+)/))[1]!;
      expect(await w.effectsOf([id!])).to.deep.equal([{ event_id: id, pid: child.proc.pid }]);
      await child.kill();
      const deliveries: Array<{ id: string; redelivered: boolean; action: string }> = [];
      await w.consume(recording(deliveries));
      await w.settled();
      expect(deliveries).to.deep.equal([{ id, redelivered: true, action: 'ack' }]);
      expect(await w.effectsOf([id!]), 'the effect is the killed process’s, once').to.deep.equal([
        { event_id: id, pid: child.proc.pid },
      ]);
      expect(await w.inboxOf(w.queue, [messageId])).to.equal(1);
      expect((await queueState(w.queue)).messageCount).to.equal(0);
    });

    it('24: should redeliver what a consumer was handling when SIGKILLed, and run it once', async () => {
      const w = await world();
      const child = w.child({ MODE: 'consume', HANG: 'before-commit' });
      await child.waitFor(/READY/);
      const [id] = await w.send('24-handling', 1);
      await child.waitFor(/HANDLING/);
      await child.kill(); // inside the transaction: its inbox record and effect roll back with the connection
      const deliveries: Array<{ id: string; redelivered: boolean; action: string }> = [];
      await w.consume(recording(deliveries));
      await w.settled();
      expect(deliveries).to.deep.equal([{ id, redelivered: true, action: 'ack' }]);
      expect(await w.effectsOf([id!])).to.deep.equal([{ event_id: id, pid: process.pid }]);
    });
  });

  describe('25: the same message at two consumer processes', () => {
    it('25: should take effect once when two consumer processes handle one message at once; both ack', async () => {
      const w = await world();
      const [one, two] = [
        w.child({ MODE: 'consume', HANG: 'before-commit' }),
        w.child({ MODE: 'consume', HANG: 'before-commit' }),
      ];
      await Promise.all([one.waitFor(/READY/), two.waitFor(/READY/)]);
      const id = `25-${randomUUID()}`;
      const message: OutboxMessage = {
        id: `msg-${id}`,
        kind: 'event',
        type: Emitted.type,
        payload: { id, pad: '' },
        occurredAt: new Date().toISOString(),
        headers: {},
      };
      // Two copies of one message at the broker, as a relay that died between confirm and mark leaves (15).
      for (let copy = 0; copy < 2; copy++) expect((await w.bus.publish([message])).sent).to.deep.equal([message.id]);
      const delivered = new RegExp(`DELIVERED ${message.id}`);
      await Promise.all([one.waitFor(delivered), two.waitFor(delivered)]); // prefetch 1 each: one copy each
      const first = await Promise.race([one, two].map((c) => c.waitFor(/HANDLING/).then(() => c)));
      // The other one is inside its transaction, its inbox insert waiting on the first one's uncommitted row.
      await until('the second consumer to wait on the inbox row', async () => {
        const { rows } = await admin.raw(
          `SELECT count(*) AS n FROM pg_stat_activity a WHERE a.wait_event_type = 'Lock' AND EXISTS (
             SELECT 1 FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
             JOIN pg_namespace s ON s.oid = c.relnamespace
             WHERE l.pid = a.pid AND s.nspname = ? AND c.relname = 'ucc_inbox')`,
          [w.schema],
        );
        return Number(rows[0].n) === 1;
      });
      first.send('GO');
      const settled = new RegExp(`SETTLED ${message.id} (\\w+)`);
      const actions = await Promise.all([one.waitFor(settled), two.waitFor(settled)]);
      expect(actions.map((m) => m[1])).to.deep.equal(['ack', 'ack']);
      await until('both acks at the broker', () => {
        const line = rabbitmqctl('list_queues', 'name', 'messages_unacknowledged', 'messages_ready', '-q')
          .split('\n')
          .find((l) => l.startsWith(`${w.queue}\t`));
        return line?.trim().split('\t').slice(1).join(' ') === '0 0';
      });
      expect(await w.effectsOf([id])).to.have.length(1);
      expect(await w.inboxOf(w.queue, [message.id])).to.equal(1);
    });
  });
});
