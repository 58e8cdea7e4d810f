// The RabbitMQ adapters on the machine's broker: delivery after commit, jobs, retries, dead letters, duplicates.
import { queueNames } from '../../../lib/core/queues.js';
import { randomUUID } from 'node:crypto';
import { Container, injectable } from 'inversify';
import { connect } from 'amqplib';
import * as v from 'valibot';
import { AmqpConnection, AmqpSource, amqpModule } from '../../../adapters/amqp/index.js';
import { MemoryOutbox, memoryModule } from '../../../adapters/memory/index.js';
import {
  Command,
  Event,
  TOKENS,
  createMediator,
  fail,
  handles,
  ok,
  type Context,
  type Handler,
} from '../../../lib/core/index.js';
import { consume, type MessageSource, type RunningRelay } from '../../../lib/messaging/index.js';
import { work } from '../../../lib/jobs/index.js';
import { everyone, recommendedStack } from '../../../middleware/index.js';
import { deleteTopology, isolatedTopology, queueType, rabbit } from '../../support/broker.js';
import { expect } from '../../support/helpers.js';

class Ordered extends Command(v.object({ orderId: v.string(), fail: v.optional(v.boolean()) }))<
  { orderId: string },
  'refused'
> {}
class OrderAccepted extends Event(v.object({ orderId: v.string() })) {
  static readonly type = 'spec.order.accepted';
}
class ShipLater extends Command(v.object({ orderId: v.string() }))<void> {}

const effects: string[] = [];
let failures = new Map<string, number>();

@handles(Ordered)
@injectable()
class OrderedHandler implements Handler<Ordered> {
  handle(cmd: Ordered, ctx: Context<Ordered>) {
    ctx.publish(new OrderAccepted({ orderId: cmd.orderId }), { aggregateId: cmd.orderId });
    ctx.enqueue(new ShipLater({ orderId: cmd.orderId }));
    return cmd.fail ? fail('refused') : ok({ orderId: cmd.orderId });
  }
}
@handles(OrderAccepted)
@injectable()
class OrderAcceptedHandler implements Handler<OrderAccepted> {
  handle(event: OrderAccepted) {
    const left = failures.get(event.orderId) ?? 0;
    if (left > 0) {
      failures.set(event.orderId, left - 1);
      throw new Error(`downstream refused ${event.orderId}`);
    }
    effects.push(`accepted:${event.orderId}`);
    return ok(undefined);
  }
}
@handles(ShipLater)
@injectable()
class ShipLaterHandler implements Handler<ShipLater> {
  handle(job: ShipLater) {
    effects.push(`shipped:${job.orderId}`);
    return ok(undefined);
  }
}

describe('RabbitMQ adapters', function () {
  this.timeout(30_000);
  let url: string;
  const cleanups: Array<() => Promise<void>> = [];

  before(async function () {
    const found = await rabbit();
    if (!found) return this.skip();
    url = found;
  });
  beforeEach(() => {
    effects.length = 0;
    failures = new Map();
  });
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  /** A mediator on memory stores and RabbitMQ, with its own exchanges. */
  function app(topology = isolatedTopology(), options: { mandatoryEvents?: boolean } = {}) {
    const container = new Container();
    container.load(
      memoryModule({ bus: false }),
      amqpModule({
        url,
        exchanges: topology.exchanges,
        relay: { backoffMs: [10, 200] },
        retryDelayMs: () => 20,
        queueType: queueType(),
        ...options,
      }),
    );
    const mediator = createMediator(container, {
      handlers: [OrderedHandler, OrderAcceptedHandler, ShipLaterHandler],
      middleware: recommendedStack({
        rules: [everyone(Ordered), everyone(OrderAccepted), everyone(ShipLater)],
        inbox: true,
      }),
    });
    const relay = container.get<RunningRelay>(TOKENS.Relay);
    const source = container.get<MessageSource>(TOKENS.MessageSource);
    const queues: string[] = [];
    cleanups.push(async () => {
      await relay.stop();
      await container.get(AmqpConnection).close();
      await deleteTopology(url, topology.exchanges, [...queues, queueNames(topology.exchanges).job(ShipLater.name)]);
    });
    return {
      container,
      mediator,
      relay,
      source,
      topology,
      queues,
      outbox: container.get(MemoryOutbox),
      async settled() {
        await relay.drain(10_000);
        await source.idle();
      },
      consume: (name: string, options = {}) => {
        queues.push(topology.queue(name));
        return consume(mediator, source, topology.queue(name), [OrderAccepted], options);
      },
    };
  }

  it('should deliver a committed event once, with its stable id, and nothing of a rolled-back send', async () => {
    const a = app();
    await a.consume('accepted');
    const id = randomUUID();
    expect(await a.mediator.send(Ordered.from({ orderId: id }))).to.deep.include({ ok: true });
    expect(await a.mediator.send(Ordered.from({ orderId: `rolled-back-${id}`, fail: true }))).to.have.nested.property(
      'failure.code',
      'refused',
    );
    await a.settled();
    expect(effects).to.deep.equal([`accepted:${id}`]);
  });

  it('should run a job from its job queue, also when the worker starts after the job was published', async () => {
    const a = app();
    const id = randomUUID();
    await a.mediator.send(Ordered.from({ orderId: id }));
    await a.relay.drain(10_000);
    expect(effects).to.deep.equal([]);
    await work(a.mediator, a.source, [ShipLater]);
    await a.settled();
    expect(effects).to.deep.equal([`shipped:${id}`]);
  });

  it('should retry a failing consumer, and dead-letter a poison message after N attempts while the queue keeps flowing', async () => {
    const a = app();
    await a.consume('flaky', { maxAttempts: 3 });
    const [flaky, poison, fine] = [randomUUID(), randomUUID(), randomUUID()];
    failures.set(flaky, 2);
    failures.set(poison, 99);
    for (const orderId of [flaky, poison, fine]) await a.mediator.send(Ordered.from({ orderId }));
    await a.settled();
    expect(effects.sort()).to.deep.equal([`accepted:${fine}`, `accepted:${flaky}`].sort());
    const model = await connect(url);
    const channel = await model.createChannel();
    const dead = await channel.get(`${a.topology.queue('flaky')}.dead`, { noAck: true });
    await model.close();
    if (!dead) return expect.fail('no dead letter');
    expect(JSON.parse(dead.content.toString())).to.deep.equal({ orderId: poison });
    expect(dead.properties.headers?.['x-usecasecore-attempt']).to.equal(3);
    expect(String(dead.properties.headers?.['x-usecasecore-dead-reason'])).to.match(
      /gave up after 3 attempts: .*downstream refused/,
    );
  });

  it('should take effect once when the same message arrives twice and at two consumers at once', async () => {
    const a = app();
    await a.consume('dedupe', { prefetch: 4 });
    const secondConnection = new AmqpConnection(url);
    cleanups.push(() => secondConnection.close());
    const second = new AmqpSource(secondConnection, { exchanges: a.topology.exchanges, queueType: queueType() });
    await consume(a.mediator, second, a.topology.queue('dedupe'), [OrderAccepted], { prefetch: 4 });
    const id = randomUUID();
    await a.mediator.send(Ordered.from({ orderId: id }));
    await a.relay.drain(10_000);
    const bus = a.container.get<{ publish(m: unknown[]): Promise<unknown> }>(TOKENS.MessageBus);
    const event = {
      id: `dup-${id}`,
      kind: 'event' as const,
      type: OrderAccepted.type,
      payload: { orderId: `dup-${id}` },
      occurredAt: new Date().toISOString(),
      headers: {},
    };
    await Promise.all([bus.publish([event]), bus.publish([event]), bus.publish([event])]);
    await a.settled();
    await second.idle();
    expect(effects.filter((e) => e === `accepted:dup-${id}`)).to.have.length(1);
    expect(effects.filter((e) => e === `accepted:${id}`)).to.have.length(1);
  });

  it('should park an unroutable mandatory event with its error instead of marking it sent', async () => {
    const a = app(isolatedTopology(), { mandatoryEvents: true });
    const id = randomUUID();
    await a.mediator.send(Ordered.from({ orderId: id }));
    await a.relay.drain(10_000);
    const parked = a.outbox.parked();
    expect(parked.map((p) => p.message.type)).to.deep.equal([OrderAccepted.type]);
    expect(parked[0]!.error).to.match(/unroutable/);
  });
});
