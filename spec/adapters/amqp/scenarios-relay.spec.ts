// RELIABILITY.md scenarios 37, 15 and 20 on RabbitMQ and Postgres: the relay under a memory alarm, killed, nacked.
import { queueNames } from '../../../lib/core/queues.js';
import { randomUUID } from 'node:crypto';
import { AmqpBus } from '../../../adapters/amqp/index.js';
import type { BusState, MessageBus } from '../../../lib/messaging/index.js';
import { expect } from '../../support/helpers.js';
import { currentWatermark, rabbitmqctl } from '../../support/rabbitmqctl.js';
import { Ship } from './app.js';
import {
  queueState,
  recordingRelay,
  until,
  useServices,
  withChannel,
  world,
  type OutboxRow,
} from './scenarios-world.js';

/** `promise`, or a rejection naming `what` once `timeoutMs` passed. */
async function within<T>(what: string, promise: Promise<T>, timeoutMs = 10_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not done within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Resolves with the bus's next state that is (or is not) blocked; rejects after `timeoutMs`. */
function nextState(bus: MessageBus, blocked: boolean, timeoutMs = 10_000): Promise<BusState> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`the bus did not become ${blocked ? 'blocked' : 'unblocked'} within ${timeoutMs} ms`));
    }, timeoutMs);
    const off = bus.onStateChange!((state) => {
      if (state.blocked !== blocked) return;
      clearTimeout(timer);
      off();
      resolve(state);
    });
  });
}

/** How many times each of `ids` occurs. */
const tally = (ids: readonly string[]) =>
  ids.reduce((m, id) => m.set(id, (m.get(id) ?? 0) + 1), new Map<string, number>());

describe('RabbitMQ scenarios (RELIABILITY.md)', function () {
  this.timeout(60_000); // each takes 1–4 s; child processes start slowly on a loaded machine
  let restoreWatermark: (() => void) | undefined;

  afterEach(() => {
    restoreWatermark?.(); // whatever failed, the broker must not stay in a memory alarm (run before the cleanups)
  });
  useServices();

  describe('37: broker backpressure', () => {
    it('37: should hold the backlog in the outbox under a memory alarm, count no attempt, deliver once', async () => {
      const errors: unknown[] = [];
      const w = await world({
        relayOptions: { batchSize: 10, pipeline: 2, onError: (error) => errors.push(error) },
        amqp: { confirmTimeoutMs: 500 }, // the alarm outlasts it: held batches must not be given up and sent twice
      });
      const bus = w.app.container.get(AmqpBus);
      const publishes: number[] = [];
      const publish = bus.publish.bind(bus);
      bus.publish = (messages) => {
        publishes.push(messages.length);
        return publish(messages);
      };
      const tap = await w.tap('copies');
      const consumer = await w.consume();
      await w.send('37-warm', 1);
      await w.settled();
      // A backlog in the consumer's queue when the alarm starts: consumers must drain it meanwhile.
      await consumer.close();
      const backlog = await w.send('37-backlog', 10);
      await w.relay.drain(10_000);
      publishes.length = 0;

      const watermark = currentWatermark();
      const restore = () => {
        restoreWatermark = undefined;
        process.off('exit', restore);
        rabbitmqctl('set_vm_memory_high_watermark', ...watermark);
      };
      restoreWatermark = restore;
      process.once('exit', restore); // mocha interrupted (Ctrl-C) runs no afterEach, but exits
      const blocked = nextState(bus, true);
      rabbitmqctl('set_vm_memory_high_watermark', '0.000001');
      const during = await w.send('37-during', 60); // every send commits: the outbox is in Postgres
      const state = await blocked;
      expect(state).to.include({ blocked: true });
      expect((state as { reason: string }).reason).to.match(/memory/);
      expect(w.relay.status().bus).to.deep.include({ blocked: true, reason: (state as { reason: string }).reason });

      // Consumers have a connection of their own, which never publishes: the alarm does not block it.
      await within('subscribing a consumer during the alarm', w.consume());
      await until('the backlog consumed during the alarm', async () => (await w.effectsOf(backlog)).length === 10);

      await new Promise((resolve) => setTimeout(resolve, 1_500)); // 3× the confirm timeout, still blocked
      expect(publishes.length, 'batches published into the alarm (at most the pipeline)').to.be.within(1, 2);
      const held = await w.outboxOf(during);
      expect(held.filter((r) => r.sent_at !== null).length, 'nothing confirmed while blocked').to.equal(0);
      const claimed = held.filter((r) => r.claimed_until !== null && Number(r.claimed_until) > Date.now());
      expect(claimed.length, 'rows held by the relay (the rest waits in Postgres)').to.be.at.most(20);
      expect(Math.max(...held.map((r) => r.attempts)), 'attempts counted').to.equal(0);
      expect(held.filter((r) => r.parked_at !== null)).to.deep.equal([]);
      expect(errors, 'errors reported').to.deep.equal([]);
      expect(w.relay.status().backoffMs).to.equal(0);

      const unblocked = nextState(bus, false);
      restore();
      await unblocked;
      await w.settled(20_000);
      const effects = tally((await w.effectsOf(during)).map((e) => e.event_id));
      expect(Object.fromEntries(effects), 'each took effect once').to.deep.equal(
        Object.fromEntries(during.map((id) => [id, 1])),
      );
      const rows = await w.outboxOf(during);
      const copies = tally(await tap.take());
      expect(
        rows.map((r) => copies.get(r.id)),
        'copies at the broker: none published twice',
      ).to.deep.equal(rows.map(() => 1));
      expect(rows.every((r) => r.sent_at !== null && r.attempts === 0 && r.parked_at === null)).to.equal(true);
      expect(errors).to.deep.equal([]);
      expect(w.relay.status().bus).to.deep.equal({ blocked: false });
    });
  });

  describe('15: a relay killed after the confirm, before marking sent', () => {
    it('15: should publish a row again with the same messageId, and the inbox makes it take effect once', async () => {
      const w = await world();
      await w.consume();
      const tap = await w.tap('copies');
      const child = w.child({ MODE: 'relay-dies', COUNT: '3', PREFIX: `15-${randomUUID().slice(0, 8)}` });
      const confirmed = JSON.parse((await child.waitFor(/CONFIRMED (\[.*\])/))[1]!) as string[];
      await child.kill();
      expect(confirmed).to.have.length(3);
      const left = await w.db('ucc_outbox').whereIn('id', confirmed).select('sent_at', 'claimed_until');
      expect(left.map((r) => r.sent_at)).to.deep.equal([null, null, null]); // confirmed, never marked
      // The dead relay's rows come back when its lease (1 s in child.ts) runs out.
      await until('the lease of the killed relay to run out', () =>
        left.every((r) => Number(r.claimed_until) < Date.now()),
      );
      await w.settled();
      const copies = tally(await tap.take());
      expect(
        confirmed.map((id) => copies.get(id)),
        'copies of each messageId',
      ).to.deep.equal([2, 2, 2]);
      const rows = await w.db('ucc_outbox').whereIn('id', confirmed).select('payload', 'sent_at');
      expect(rows.every((r) => r.sent_at !== null)).to.equal(true);
      const emitIds = rows.map((r) => (r.payload as { id: string }).id);
      expect((await w.effectsOf(emitIds)).length, 'side effects').to.equal(3);
      expect(await w.inboxOf(w.queue, confirmed)).to.equal(3);
    });
  });

  describe('20: nack or channel close mid-batch', () => {
    it('20: should mark only confirmed rows sent when the broker nacks the rest, and publish those again', async () => {
      const w = await world({ relay: false });
      // A slow retry, so the spec reads what the broker took before the nacked rows are published again.
      const { relay, publishOnce } = recordingRelay(w, { backoffMs: [500, 500] });
      // A full queue with reject-publish: the broker nacks every message routed to it beyond the third.
      const tap = await w.tap('bounded', { 'x-max-length': 3, 'x-overflow': 'reject-publish' });
      const ids = await w.send('20-nack', 6);
      const order = (await w.outboxOf(ids)).map((r) => r.id);
      const report = await publishOnce();
      const settled = (rows: OutboxRow[]) =>
        rows.slice(0, 3).every((r) => r.sent_at !== null) && rows.slice(3).every((r) => r.attempts > 0);
      await until('the relay to mark the batch', async () => settled(await w.outboxOf(ids)));
      expect(report.sent).to.deep.equal(order.slice(0, 3));
      expect(report.failed.map((f) => f.id)).to.deep.equal(order.slice(3));
      for (const failure of report.failed) expect(failure).to.deep.include({ permanent: false });
      expect(report.failed[0]!.error).to.match(/nacked by the broker/);
      expect(report.unconfirmed ?? []).to.deep.equal([]);
      const rows = await w.outboxOf(ids);
      expect(rows.slice(0, 3).map((r) => [r.sent_at !== null, r.attempts])).to.deep.equal([
        [true, 0],
        [true, 0],
        [true, 0],
      ]);
      for (const row of rows.slice(3)) {
        expect(row.sent_at, 'a nacked row is not sent').to.equal(null);
        expect(row.parked_at).to.equal(null);
        expect(row.attempts, 'a nack counts an attempt').to.be.at.least(1);
        expect(row.last_error).to.match(/nacked/);
      }
      expect(await tap.take(), 'what the broker took').to.deep.equal(order.slice(0, 3));
      await relay.drain(10_000); // room again: the nacked rows go through
      expect(await tap.take(), 'the nacked rows, once each').to.deep.equal(order.slice(3));
    });

    it('20: should mark only confirmed rows sent when the channel closes mid-batch, the rest not counted', async () => {
      const w = await world({ relay: false });
      const { relay, publishOnce } = recordingRelay(w);
      const tap = await w.tap('copies');
      const jobQueue = queueNames(w.topology.exchanges).job(Ship.name);
      w.queues.push(jobQueue);
      const warm = await w.send('20-warm', 1, { job: true }); // the bus declares Ship's job queue, and remembers it
      await relay.drain(10_000);
      // Publishing a job now closes the channel (404: no exchange) between the events before and after it.
      await withChannel((channel) => channel.deleteExchange(w.topology.exchanges.jobs));
      const ids = [
        ...(await w.send('20-before', 20)),
        ...(await w.send('20-middle', 1, { job: true })),
        ...(await w.send('20-after', 20)),
      ];
      const rows = await w.outboxOf(ids);
      const job = rows.findIndex((r) => r.kind === 'job');
      expect(job).to.be.within(20, 21);
      const report = await publishOnce();
      expect(report.failed).to.deep.equal([]);
      expect(report.unconfirmed, 'the job and everything after it').to.include.members(
        rows.slice(job).map((r) => r.id),
      );
      expect(
        rows.slice(0, job).map((r) => r.id),
        'confirmed rows come from before the close',
      ).to.include.members(report.sent);
      expect(report.sent.length + report.unconfirmed!.length).to.equal(rows.length);
      const confirmed = new Set(report.sent);
      await until('the relay to mark the confirmed rows', async () =>
        (await w.outboxOf(ids)).every((r) => !confirmed.has(r.id) || r.sent_at !== null),
      );
      const marked = await w.outboxOf(ids);
      expect(
        marked.filter((r) => r.attempts > 0 || r.parked_at !== null),
        'attempts or parking',
      ).to.deep.equal([]);
      for (const id of report.sent) expect(marked.find((r) => r.id === id)!.sent_at, id).to.not.equal(null);

      await relay.drain(10_000); // a new channel, exchanges and the job queue declared again
      const copies = tally(await tap.take());
      for (const id of report.sent) expect(copies.get(id), `confirmed ${id} published again`).to.equal(1);
      for (const row of rows.filter((r) => r.kind === 'event')) expect(copies.get(row.id), row.id).to.be.at.least(1);
      expect((await queueState(jobQueue)).messageCount, 'the two jobs, once each').to.equal(2);
      const done = await w.outboxOf([...warm, ...ids]);
      expect(done.every((r) => r.sent_at !== null && r.attempts === 0)).to.equal(true);
    });
  });
});
