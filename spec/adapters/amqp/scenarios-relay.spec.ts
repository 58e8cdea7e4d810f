// RELIABILITY.md scenarios 15, 20, 22, 24, 25 and 37 on the machine's RabbitMQ and Postgres, with real processes
// (spec/amqp/child.ts, SIGKILLed) where a scenario kills one. Side effects are rows of spec_effects written in the
// consumer's transaction, so they are counted across processes.
import { queueNames } from '../../../lib/core/queues.js';
import { randomUUID } from 'node:crypto';
import { EventEmitter, once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { connect, type Channel, type ChannelModel } from 'amqplib';
import type { Knex } from 'knex';
import { AmqpBus, AmqpSource, type AmqpRole } from '../../../adapters/amqp/index.js';
import { TOKENS, withRules } from '../../../lib/core/index.js';
import {
  consume,
  createRelay,
  type BusState,
  type MessageBus,
  type MessageSource,
  type Outbox,
  type OutboxMessage,
  type PublishReport,
  type RelayOptions,
  type RunningRelay,
} from '../../../lib/messaging/index.js';
import { deleteTopology, isolatedTopology, rabbit } from '../../support/broker.js';
import { postgres } from '../../support/db.js';
import { expect } from '../../support/helpers.js';
import { spawnChild, type Child } from '../../support/processes.js';
import { createSchema, scopedKnex } from '../../support/sample-db.js';
import { EFFECTS, Emit, Emitted, Ship, createEffectsTable, faultApp, type FaultAppOptions } from './app.js';
import { closeConnectionsNamed, currentWatermark, rabbitmqctl } from '../../support/rabbitmqctl.js';

const CHILD = fileURLToPath(new URL('./child.ts', import.meta.url));

/** Polls `check` until it holds, at most `timeoutMs`: for what no event announces (another process, the broker). */
async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  for (const deadline = Date.now() + timeoutMs; !(await check()); await new Promise((r) => setTimeout(r, 25))) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
  }
}

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

interface OutboxRow {
  id: string;
  kind: string;
  emit_id: string;
  attempts: number;
  claimed_until: string | null;
  last_error: string | null;
  sent_at: Date | null;
  parked_at: Date | null;
}

describe('RabbitMQ scenarios (RELIABILITY.md)', function () {
  this.timeout(60_000); // each takes 1–4 s; child processes start slowly on a loaded machine
  let amqpUrl: string, pgUrl: string, admin: Knex;
  const cleanups: Array<() => Promise<void>> = [];
  let restoreWatermark: (() => void) | undefined;

  before(async function () {
    const [broker, pg] = [await rabbit(), await postgres()];
    if (!broker || !pg) return this.skip();
    [amqpUrl, admin, pgUrl] = [broker, pg, process.env.DATABASE_URL!];
  });

  afterEach(async () => {
    restoreWatermark?.(); // whatever failed, the broker must not stay in a memory alarm
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  /** Runs `work` on a channel of a connection of its own (the broker may have restarted since the last one). */
  async function withChannel<T>(work: (channel: Channel) => Promise<T>): Promise<T> {
    const model = await connect(amqpUrl);
    try {
      const channel = await model.createChannel();
      channel.on('error', () => undefined); // a failed operation rejects; without a listener it would also throw
      return await work(channel);
    } finally {
      await model.close().catch(() => undefined);
    }
  }
  const queueState = (queue: string) => withChannel((channel) => channel.checkQueue(queue));

  /**
   * One scenario's world: a mediator on a schema and exchanges of its own (no row or message of another scenario
   * in sight), its consumer queue, its child processes and their cleanup. With `relay: false` nothing publishes
   * until the spec runs a relay of its own.
   */
  async function world(options: FaultAppOptions = {}) {
    const schema = `amqpscn_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
    await createSchema(pgUrl, schema);
    const db = scopedKnex(pgUrl, schema, 10);
    await createEffectsTable(db);
    const topology = isolatedTopology();
    const queue = topology.queue('emitted');
    const app = faultApp(db, amqpUrl, topology.exchanges, {
      ...options,
      amqp: { connectionName: topology.prefix, ...options.amqp },
    });
    const relay = options.relay === false ? undefined : app.container.get<RunningRelay>(TOKENS.Relay);
    const source = app.container.get(AmqpSource);
    const queues = [queue];
    const children: Child[] = [];
    cleanups.push(async () => {
      await Promise.all(children.map((child) => child.kill()));
      await relay?.stop();
      await app.connection.close();
      await deleteTopology(amqpUrl, topology.exchanges, queues);
      await db.destroy();
      await admin.raw('DROP SCHEMA IF EXISTS ?? CASCADE', [schema]);
    });
    return {
      schema,
      db,
      /** The outbox rows of these Emit ids (events and jobs), in outbox order. */
      outboxOf: async (emitIds: readonly string[]): Promise<OutboxRow[]> =>
        (
          await db.raw(
            `SELECT id, kind, payload->>'id' AS emit_id, attempts, claimed_until, last_error, sent_at, parked_at
             FROM ucc_outbox WHERE payload->>'id' = ANY(?) ORDER BY position`,
            [[...emitIds]],
          )
        ).rows as OutboxRow[],
      /** The side effects of these Emit ids, with the process that made each. */
      effectsOf: (emitIds: readonly string[]): Promise<Array<{ event_id: string; pid: number }>> =>
        db(EFFECTS).whereIn('event_id', emitIds).select('event_id', 'pid'),
      /** How many of these message ids the consumer recorded in its inbox. */
      inboxOf: async (consumer: string, messageIds: readonly string[]) =>
        Number((await db('ucc_inbox').where({ consumer }).whereIn('message_id', messageIds).count({ n: '*' }))[0]!.n),
      app,
      topology,
      queue,
      queues,
      source,
      relay: relay!,
      bus: app.container.get<MessageBus>(TOKENS.MessageBus),
      /** Consumes the queue in this process; `wrap` sees each delivery (e.g. to record it). */
      consume: (wrap: (source: MessageSource) => MessageSource = (s) => s) =>
        consume(app.mediator, wrap(source), queue, [Emitted], { prefetch: 8 }),
      async settled(timeoutMs = 10_000) {
        await relay?.drain(timeoutMs);
        await source.idle();
      },
      /** Sends one Emit per id, one after another (so their outbox rows are in this order). */
      async send(prefix: string, count: number, extra: { job?: boolean } = {}): Promise<string[]> {
        const ids: string[] = [];
        for (let i = 0; i < count; i++) {
          const id = `${prefix}-${i}-${randomUUID().slice(0, 8)}`;
          const result = await app.mediator.send(Emit.from({ id, ...extra }));
          expect(result.ok, JSON.stringify(result)).to.equal(true);
          ids.push(id);
        }
        return ids;
      },
      /** A queue bound to every Emitted event, without consumer: what the broker routed, copy by copy. */
      async tap(name: string, args: Record<string, unknown> = {}) {
        const tapQueue = topology.queue(name);
        queues.push(tapQueue);
        await withChannel(async (channel) => {
          await channel.assertExchange(topology.exchanges.events, 'topic', { durable: true });
          await channel.assertQueue(tapQueue, { durable: true, arguments: args });
          await channel.bindQueue(tapQueue, topology.exchanges.events, Emitted.type);
        });
        return {
          /** Takes every message off the tap; their message ids, in queue order. */
          take: () =>
            withChannel(async (channel) => {
              const ids: string[] = [];
              const next = () => channel.get(tapQueue, { noAck: true });
              for (let m = await next(); m; m = await next()) ids.push(String(m.properties.messageId));
              return ids;
            }),
        };
      },
      /** Starts spec/amqp/child.ts on this world's schema, exchanges and queue. */
      child(env: Record<string, string>): Child {
        const child = spawnChild(CHILD, {
          DATABASE_URL: pgUrl,
          SCHEMA: schema,
          AMQP_URL: amqpUrl,
          EXCHANGES: JSON.stringify(topology.exchanges),
          QUEUE: queue,
          ...env,
        });
        children.push(child);
        return child;
      },
      /** Closes this world's connections from the broker's side, as an operator or a network failure would. */
      dropConnections: () => closeConnectionsNamed(topology.prefix),
    };
  }

  /** A relay of the spec's own over the world's outbox and bus, telling each publish's report as it comes. */
  function recordingRelay(w: Awaited<ReturnType<typeof world>>, options: RelayOptions = {}) {
    const reported = new EventEmitter();
    const recorder: MessageBus = {
      async publish(messages) {
        const report = await w.bus.publish(messages);
        reported.emit('report', report);
        return report;
      },
    };
    const outbox = w.app.container.get<Outbox>(TOKENS.Outbox);
    const relay = createRelay(outbox, recorder, {
      batchSize: 100,
      pipeline: 1,
      maxAttempts: 10,
      backoffMs: [50, 200],
      ...options,
    });
    cleanups.push(() => relay.stop());
    return {
      relay,
      /** Wakes the relay and resolves with the report of the publish that follows. */
      async publishOnce(): Promise<PublishReport> {
        const next = once(reported, 'report') as Promise<[PublishReport]>;
        relay.wake();
        return (await next)[0];
      },
    };
  }

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
