// What the RabbitMQ scenarios share: polling, and a world of its own per case on the machine's RabbitMQ and Postgres.
import { randomUUID } from 'node:crypto';
import { EventEmitter, once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { connect, type Channel } from 'amqplib';
import type { Knex } from 'knex';
import { AmqpSource } from '../../../adapters/amqp/index.js';
import { TOKENS } from '../../../lib/core/index.js';
import {
  consume,
  createRelay,
  type MessageBus,
  type MessageSource,
  type Outbox,
  type PublishReport,
  type RelayOptions,
  type RunningRelay,
} from '../../../lib/messaging/index.js';
import { deleteTopology, isolatedTopology, rabbit } from '../../support/broker.js';
import { postgres } from '../../support/db.js';
import { expect } from '../../support/helpers.js';
import { spawnChild, type Child } from '../../support/processes.js';
import { createSchema, scopedKnex } from '../../support/sample-db.js';
import { EFFECTS, Emit, Emitted, createEffectsTable, faultApp, type FaultAppOptions } from './app.js';
import { closeConnectionsNamed } from '../../support/rabbitmqctl.js';

const CHILD = fileURLToPath(new URL('./child.ts', import.meta.url));

/** Polls `check` until it holds, at most `timeoutMs`: for what no event announces (another process, the broker). */
export async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  for (const deadline = Date.now() + timeoutMs; !(await check()); await new Promise((r) => setTimeout(r, 25))) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
  }
}

export interface OutboxRow {
  id: string;
  kind: string;
  emit_id: string;
  attempts: number;
  claimed_until: string | null;
  last_error: string | null;
  sent_at: Date | null;
  parked_at: Date | null;
}

let amqpUrl: string, pgUrl: string;
/** An admin knex on the machine's Postgres (set by the hook below). */
export let admin: Knex;
const cleanups: Array<() => Promise<void>> = [];

/** For the scenarios' describe: skipped without RabbitMQ or Postgres, and each case's worlds cleaned up after it. */
export function useServices(): void {
  before(async function () {
    const [broker, pg] = [await rabbit(), await postgres()];
    if (!broker || !pg) return this.skip();
    [amqpUrl, admin, pgUrl] = [broker, pg, process.env.DATABASE_URL!];
  });

  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });
}

/** Runs `work` on a channel of a connection of its own (the broker may have restarted since the last one). */
export async function withChannel<T>(work: (channel: Channel) => Promise<T>): Promise<T> {
  const model = await connect(amqpUrl);
  try {
    const channel = await model.createChannel();
    channel.on('error', () => undefined); // a failed operation rejects; without a listener it would also throw
    return await work(channel);
  } finally {
    await model.close().catch(() => undefined);
  }
}
export const queueState = (queue: string) => withChannel((channel) => channel.checkQueue(queue));

/**
 * One scenario's world: a mediator on a schema and exchanges of its own (no row or message of another scenario
 * in sight), its consumer queue, its child processes and their cleanup. With `relay: false` nothing publishes
 * until the spec runs a relay of its own. Side effects are rows of spec_effects written in the consumer's
 * transaction, so they are counted across processes.
 */
export async function world(options: FaultAppOptions = {}) {
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
export function recordingRelay(w: Awaited<ReturnType<typeof world>>, options: RelayOptions = {}) {
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
