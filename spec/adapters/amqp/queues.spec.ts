// The queues the RabbitMQ adapters declare: quorum by default (delivery limit, at-least-once dead-lettering), classic
// on request, a clear error for a queue that exists with the other type, and a queue's own retry delay.
import { queueNames } from '../../../lib/core/queues.js';
import { EventEmitter, once } from 'node:events';
import { randomUUID } from 'node:crypto';
import { connect, type Channel, type ChannelModel } from 'amqplib';
import {
  AmqpBus,
  AmqpConnection,
  AmqpSource,
  amqpModule,
  type AmqpRole,
  type AmqpSourceOptions,
} from '../../../adapters/amqp/index.js';
import { UseCaseError } from '../../../lib/core/index.js';
import type { Delivery, OutboxMessage, QueueOptions } from '../../../lib/messaging/index.js';
import { deleteTopology, isolatedTopology, queueType, rabbit } from '../../support/broker.js';
import { expect } from '../../support/helpers.js';
import { queuesNamed } from '../../support/rabbitmqctl.js';

/** Polls `check` until it holds, at most `timeoutMs`: for broker state no event announces. */
async function until(what: string, check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  for (const deadline = Date.now() + timeoutMs; !(await check()); await new Promise((r) => setTimeout(r, 25))) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
  }
}

const job = (type: string): OutboxMessage => ({
  id: randomUUID(),
  kind: 'job',
  type,
  payload: {},
  occurredAt: new Date().toISOString(),
  headers: {},
});
const event = (): OutboxMessage => ({ ...job('spec.queues.pinged'), kind: 'event' });

describe('amqpModule queue options', () => {
  it('should refuse a queue type or delivery limit the broker would misread, saying what it takes', () => {
    const url = 'amqp://127.0.0.1';
    expect(() => amqpModule({ url, queueType: 'Quorum' as 'quorum' })).to.throw(
      UseCaseError,
      "amqpModule: queueType must be 'quorum' or 'classic', got Quorum",
    );
    // 0 or less: RabbitMQ 3 drops the message the first time it comes back.
    for (const deliveryLimit of [0, -1, 2.5])
      expect(() => amqpModule({ url, deliveryLimit }), String(deliveryLimit)).to.throw(
        UseCaseError,
        `amqpModule: deliveryLimit must be a whole number ≥ 1, got ${deliveryLimit}`,
      );
  });
});

describe('RabbitMQ queue types: quorum by default, classic on request', function () {
  this.timeout(30_000);
  let url: string;
  const cleanups: Array<() => Promise<unknown>> = [];

  before(async function () {
    const found = await rabbit();
    if (!found) return this.skip();
    url = found;
  });
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  /** Runs `work` on a channel of a connection of its own (a failed operation closes only that channel). */
  async function withChannel<T>(work: (channel: Channel) => Promise<T>): Promise<T> {
    const model = await connect(url);
    try {
      const channel = await model.createChannel();
      channel.on('error', () => undefined); // the failed operation rejects; 'error' would also throw
      return await work(channel);
    } finally {
      await model.close().catch(() => undefined);
    }
  }

  /** A source and a bus on exchanges of their own, with one connection named after them; cleaned up after. */
  function world(options: Partial<Omit<AmqpSourceOptions, 'exchanges'>> = {}) {
    const topology = isolatedTopology();
    const connection = new AmqpConnection(url, 10, topology.prefix);
    const { exchanges } = topology;
    const source = new AmqpSource(connection, { exchanges, retryDelayMs: () => 20, ...options });
    const bus = new AmqpBus(connection, { exchanges, mandatoryEvents: false, ...options });
    const queues: string[] = [];
    cleanups.push(async () => {
      await connection.close();
      await deleteTopology(url, exchanges, queues);
    });
    const queue = (name: string) => {
      queues.push(topology.queue(name));
      return topology.queue(name);
    };
    /** Consumes `name` (events of `spec.queues.pinged`), handing each delivery to `handle`. */
    const consume = (name: string, handle: (d: Delivery) => Promise<void>, more: Partial<QueueOptions> = {}) =>
      source.consume(
        {
          queue: queue(name),
          bindings: [{ kind: 'event', type: 'spec.queues.pinged' }],
          prefetch: 1,
          maxAttempts: 5,
          ...more,
        },
        async (delivery) => {
          await handle(delivery);
          return { action: 'ack' };
        },
      );
    return { topology, connection, source, bus, queue, queues, consume };
  }

  /** The declared queues of `w`, by name, with their type and arguments, as the broker lists them. */
  function declared(w: ReturnType<typeof world>, ...names: string[]) {
    const listed = queuesNamed(w.topology.prefix);
    return Object.fromEntries(names.map((name) => [name, listed.get(name)]));
  }

  it('should declare quorum queues by default: consumer (delivery limit), .retry, .dead and job queues', async () => {
    const w = world();
    const consumer = await w.consume('typed', async () => undefined);
    await consumer.close();
    const jobQueue = queueNames(w.topology.exchanges).job('spec.queues.Ship');
    w.queues.push(jobQueue);
    expect((await w.bus.publish([job('spec.queues.Ship')])).sent).to.have.length(1); // the bus declares it
    const name = w.topology.queue('typed');
    const queues = declared(w, name, `${name}.retry`, `${name}.dead`, jobQueue);
    const atLeastOnce = { 'x-dead-letter-strategy': 'at-least-once', 'x-overflow': 'reject-publish' };
    expect(queues[name]).to.deep.equal({
      type: 'quorum',
      arguments: {
        'x-queue-type': 'quorum',
        'x-delivery-limit': 20,
        'x-dead-letter-exchange': w.topology.exchanges.dead,
        'x-dead-letter-routing-key': name,
        ...atLeastOnce,
      },
    });
    expect(queues[`${name}.retry`]).to.deep.equal({
      type: 'quorum',
      arguments: {
        'x-queue-type': 'quorum',
        'x-dead-letter-exchange': '',
        'x-dead-letter-routing-key': name,
        ...atLeastOnce,
      },
    });
    expect(queues[`${name}.dead`], 'no delivery limit: nowhere to move a dead letter to').to.deep.equal({
      type: 'quorum',
      arguments: { 'x-queue-type': 'quorum' },
    });
    expect(queues[jobQueue]).to.have.property('type', 'quorum');
    expect(queues[jobQueue]!.arguments).to.include({
      'x-delivery-limit': 20,
      'x-dead-letter-strategy': 'at-least-once',
    });
  });

  it("should declare classic queues with queueType: 'classic', with no quorum-only argument", async () => {
    const w = world({ queueType: 'classic' });
    const consumer = await w.consume('typed', async () => undefined);
    await consumer.close();
    const jobQueue = queueNames(w.topology.exchanges).job('spec.queues.Ship');
    w.queues.push(jobQueue);
    expect((await w.bus.publish([job('spec.queues.Ship')])).sent).to.have.length(1);
    const name = w.topology.queue('typed');
    const queues = declared(w, name, `${name}.retry`, `${name}.dead`, jobQueue);
    for (const queue of Object.keys(queues)) expect(queues[queue], queue).to.have.property('type', 'classic');
    expect(queues[name]!.arguments).to.deep.equal({
      'x-queue-type': 'classic',
      'x-dead-letter-exchange': w.topology.exchanges.dead,
      'x-dead-letter-routing-key': name,
    });
  });

  // On quorum queues; a classic queue has no delivery limit, so there the message keeps coming back.
  it(`should dead-letter a message whose consumer keeps dying, past deliveryLimit [${queueType()}]`, async () => {
    const type = queueType();
    const deliveryLimit = 2;
    const w = world({ queueType: type, deliveryLimit });
    const deliveries: Array<{ id: string; redelivered: boolean }> = [];
    const delivered = new EventEmitter();
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    cleanups.push(async () => release()); // the handlers still waiting finish before the connection closes
    await w.consume('crashing', async (delivery) => {
      deliveries.push({ id: delivery.message.id, redelivered: delivery.redelivered });
      delivered.emit('delivery');
      await released; // "crashes": never acks; the spec drops the connection under it
    });
    const name = w.topology.queue('crashing');
    const message = event();
    expect((await w.bus.publish([message])).sent).to.deep.equal([message.id]);
    // Each drop returns the unacked message to its queue: one more delivery, counted by a quorum queue.
    for (let drop = 0; drop <= deliveryLimit; drop++) {
      if (deliveries.length <= drop) await once(delivered, 'delivery');
      const model = await w.connection.model('consume');
      const lost = once(w.connection, 'lost');
      await model.close(); // as a crash would: the broker gets the delivery back
      await lost;
    }
    const queueState = (queue: string) => withChannel((channel) => channel.checkQueue(queue));
    if (type === 'quorum') {
      await until('the message in .dead', async () => (await queueState(`${name}.dead`)).messageCount === 1);
      const dead = await withChannel((channel) => channel.get(`${name}.dead`, { noAck: true }));
      if (!dead) return expect.fail('no dead letter');
      expect(dead.properties.messageId).to.equal(message.id);
      expect(dead.properties.headers).to.deep.include({
        'x-first-death-reason': 'delivery_limit',
        'x-first-death-queue': name,
      });
      expect((await queueState(name)).messageCount, 'gone from its queue').to.equal(0);
    } else {
      if (deliveries.length <= deliveryLimit + 1) await once(delivered, 'delivery'); // no limit: delivered again
      expect((await queueState(`${name}.dead`)).messageCount).to.equal(0);
    }
    expect(deliveries).to.deep.equal([
      { id: message.id, redelivered: false },
      ...Array.from({ length: deliveryLimit + (type === 'quorum' ? 0 : 1) }, () => ({
        id: message.id,
        redelivered: true,
      })),
    ]);
  });

  it("should refuse an earlier version's classic queue with a UseCaseError saying how to fix it, no loop", async () => {
    const w = world({ queueType: 'quorum' });
    const name = w.queue('old');
    // As versions before queueType declared it: classic, no x-queue-type.
    await withChannel(async (channel) => {
      await channel.assertExchange(w.topology.exchanges.dead, 'direct', { durable: true });
      await channel.assertQueue(name, {
        durable: true,
        deadLetterExchange: w.topology.exchanges.dead,
        deadLetterRoutingKey: name,
      });
    });
    const opened: Array<{ role: AmqpRole; channels: number }> = [];
    w.connection.on('open', (role: AmqpRole, model: ChannelModel) => {
      const counted = { role, channels: 0 };
      opened.push(counted);
      const create = model.createChannel.bind(model);
      model.createChannel = (...args) => {
        counted.channels++;
        return create(...args);
      };
    });
    const refused = await w
      .consume('old', async () => undefined)
      .then(
        () => expect.fail('consume() resolved on a queue of the other type'),
        (error: unknown) => error,
      );
    expect(UseCaseError.is(refused), String(refused)).to.equal(true);
    expect(refused).to.include({ kind: 'misuse' });
    expect((refused as Error).message).to.equal(
      // The broker names the first argument that differs: x-overflow, set on quorum queues only.
      `RabbitMQ queue '${name}' is most likely a classic queue (x-overflow is unset there, reject-publish here), ` +
        `but this app declares it quorum (queueType: 'quorum'), and a queue's type cannot change. ` +
        `Either pass queueType: 'classic' to amqpModule() to keep using it, or ` +
        `drain the queues ${name}, ${name}.retry and ${name}.dead (or move their messages, e.g. with a shovel) and ` +
        `delete them (rabbitmqctl delete_queue <name>), so they are declared again as quorum queues.`,
    );
    expect((refused as Error).cause).to.have.property('code', 406);
    // The channel the broker closed starts no reconnect: the next consume is the only other channel opened.
    await (await w.consume('fine', async () => undefined)).close();
    expect(opened, 'one consume connection, a channel per consume()').to.deep.equal([{ role: 'consume', channels: 2 }]);
  });

  it('should fail a publish whose job queue is of the other type, naming the fix, and publish once fixed', async () => {
    const quorum = world({ queueType: 'quorum' });
    const jobQueue = queueNames(quorum.topology.exchanges).job('spec.queues.Ship');
    quorum.queues.push(jobQueue);
    expect((await quorum.bus.publish([job('spec.queues.Ship')])).sent).to.have.length(1);
    // Another app on the same exchanges, declaring classic queues.
    const connection = new AmqpConnection(url, 10, `${quorum.topology.prefix}-classic`);
    cleanups.push(() => connection.close());
    const classic = new AmqpBus(connection, {
      exchanges: quorum.topology.exchanges,
      mandatoryEvents: false,
      queueType: 'classic',
    });
    for (let publish = 0; publish < 2; publish++) {
      const error = await classic.publish([job('spec.queues.Ship')]).then(
        () => expect.fail('published into a job queue of the other type'),
        (e: unknown) => e,
      );
      expect(UseCaseError.is(error), String(error)).to.equal(true);
      expect((error as Error).message).to.match(
        new RegExp(
          `^RabbitMQ queue '${jobQueue}' is most likely a quorum queue .*, but this app declares it classic .*` +
            `pass queueType: 'quorum' to amqpModule\\(\\)`,
        ),
      );
    }
    await withChannel(async (channel) => {
      for (const queue of [jobQueue, `${jobQueue}.retry`, `${jobQueue}.dead`]) await channel.deleteQueue(queue);
    });
    expect((await classic.publish([job('spec.queues.Ship')])).sent, 'declared again, as classic').to.have.length(1);
    expect(queuesNamed(quorum.topology.prefix).get(jobQueue)).to.have.property('type', 'classic');
  });

  it('should say why a consumer stays away when its queue came back of another type; resume once fixed', async () => {
    const w = world({ queueType: 'quorum' });
    const logged: string[] = [];
    const log = (level: string) => (message: string) => void logged.push(`${level}: ${message}`);
    w.connection.logTo({ debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') });
    const received = new EventEmitter();
    for (const queue of ['moved', 'steady'])
      await w.consume(queue, async (delivery) => void received.emit(queue, delivery.message.id));
    const name = w.topology.queue('moved');
    // Hold the consumers' reconnection while the queue changes type under them.
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    const model = w.connection.model.bind(w.connection);
    const consuming = await model('consume');
    w.connection.model = (role: AmqpRole = 'publish') =>
      role === 'consume' ? gate.then(() => model(role)) : model(role);
    const lost = once(w.connection, 'lost');
    await consuming.close();
    await lost;
    await withChannel(async (channel) => {
      await channel.deleteQueue(name);
      // An app of a version before queueType declares it again meanwhile: classic.
      const dead = w.topology.exchanges.dead;
      await channel.assertQueue(name, { durable: true, deadLetterExchange: dead, deadLetterRoutingKey: name });
    });
    let channels = 0; // one per attempt to start a consumer
    w.connection.on('open', (_role: AmqpRole, reopened: ChannelModel) => {
      const create = reopened.createChannel.bind(reopened);
      reopened.createChannel = (...args) => (channels++, create(...args));
    });
    const refusals: unknown[] = [];
    w.connection.on('refused', (_role: AmqpRole, error: unknown) => refusals.push(error));
    const refused = once(w.connection, 'refused') as Promise<[AmqpRole, Error]>;
    open();
    const [role, error] = await refused;
    expect(role).to.equal('consume');
    expect(UseCaseError.is(error) && error.kind).to.equal('misuse');
    expect(error.message).to.match(
      new RegExp(`^RabbitMQ queue '${name}' is most likely a classic queue .* declares it quorum`),
    );
    expect(logged).to.include(`error: amqp: ${error.message}`);
    // The other consumer is back meanwhile (the refused queue, declared anew, is bound to nothing).
    const first = event();
    const steady = once(received, 'steady');
    expect((await w.bus.publish([first])).sent).to.deep.equal([first.id]);
    expect(await steady).to.deep.equal([first.id]);
    await until('the refused consumer tried again twice', async () => channels >= 4); // moved, steady, moved, moved

    await withChannel((channel) => channel.deleteQueue(name)); // the operator's fix: the consumer declares it again
    await until('the consumer back on its queue', async () =>
      withChannel(async (channel) => (await channel.checkQueue(name)).consumerCount === 1).catch(() => false),
    );
    expect(queuesNamed(w.topology.prefix).get(name)).to.have.property('type', 'quorum');
    const second = event();
    const moved = once(received, 'moved');
    expect((await w.bus.publish([second])).sent).to.deep.equal([second.id]);
    expect(await moved).to.deep.equal([second.id]);
    expect(refusals, 'told once, however often it retried').to.have.length(1);
  });

  it("should wait a queue's own retry delay (QueueOptions.retryDelayMs) rather than the source's", async () => {
    const w = world({ queueType: queueType(), retryDelayMs: () => 60_000 });
    const attempts = new EventEmitter();
    await w.source.consume(
      {
        queue: w.queue('own-delay'),
        bindings: [{ kind: 'event', type: 'spec.queues.pinged' }],
        prefetch: 1,
        maxAttempts: 3,
        retryDelayMs: () => 1,
      },
      async (delivery) => {
        attempts.emit('attempt', delivery.attempt);
        return delivery.attempt === 1 ? { action: 'retry', reason: 'not yet' } : { action: 'ack' };
      },
    );
    const second = new Promise<void>((resolve) => attempts.on('attempt', (n: number) => n === 2 && resolve()));
    const started = Date.now();
    await w.bus.publish([event()]);
    await second; // with the source's delay this would take a minute, past the spec's timeout
    expect(Date.now() - started).to.be.below(10_000);
    await w.source.idle();
  });
});
