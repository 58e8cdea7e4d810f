// Event subscribers (@on): several per event, each on a queue of its own with its own retries, dead letters and
// inbox records — one failing subscriber never re-runs another. On the memory bus and on RabbitMQ + Postgres.
import 'reflect-metadata';
import { randomUUID } from 'node:crypto';
import { Container, inject, injectable } from 'inversify';
import type { Knex } from 'knex';
import * as v from 'valibot';
import { amqpModule, AmqpConnection } from '../../../adapters/amqp/index.js';
import { KnexUnitOfWork, knexModule } from '../../../adapters/knex/index.js';
import { MemoryBus, MemoryUnitOfWork, TransactionalMap, memoryModule } from '../../../adapters/memory/index.js';
import { settled } from '../../../lib/testing/index.js';
import {
  Command,
  Event,
  TOKENS,
  UseCaseError,
  createMediator,
  handles,
  ok,
  on,
  type Context,
} from '../../../lib/core/index.js';
import { subscribe, type MessageSource } from '../../../lib/messaging/index.js';
import { everyone, recommendedStack } from '../../../middleware/index.js';
import { deleteTopology, isolatedTopology, queueType, realServices } from '../../support/broker.js';
import { createSchema, scopedKnex } from '../../support/sample-db.js';
import { expect } from '../../support/helpers.js';

class PayOrder extends Command(v.object({ orderId: v.string() }))<{ paid: true }> {}
class OrderPaid extends Event(v.object({ orderId: v.string() })) {
  static readonly type = 'order.paid';
}

/** What each subscriber did: runs (attempts included) and effects (committed). */
const log = { receiptRuns: 0, ledgerRuns: 0, ledgerFailures: 0 };
/** Where effects go: memory arrays, or a Postgres table through the ambient transaction. */
const EFFECTS = Symbol('effects');
interface Effects {
  record(who: 'receipt' | 'ledger', orderId: string): Promise<void>;
}

@handles(PayOrder)
@injectable()
class PayOrderHandler {
  handle(cmd: PayOrder, ctx: Context<PayOrder>) {
    ctx.publish(new OrderPaid({ orderId: cmd.orderId }));
    return ok({ paid: true as const });
  }
}

@on(OrderPaid)
@injectable()
class SendReceipt {
  constructor(@inject(EFFECTS) private readonly effects: Effects) {}
  async handle(event: OrderPaid) {
    log.receiptRuns++;
    await this.effects.record('receipt', event.orderId);
    return ok(undefined);
  }
}

@on(OrderPaid)
@injectable()
class PostToLedger {
  static readonly subscription = 'ledger';
  constructor(@inject(EFFECTS) private readonly effects: Effects) {}
  async handle(event: OrderPaid) {
    log.ledgerRuns++;
    await this.effects.record('ledger', event.orderId); // written, then rolled back while the ledger is "down"
    if (log.ledgerFailures-- > 0) throw new Error('the ledger is down');
    return ok(undefined);
  }
}

const rules = [everyone(PayOrder), everyone(OrderPaid)];
const HANDLERS = [PayOrderHandler, SendReceipt, PostToLedger];
const reset = (ledgerFailures: number) => Object.assign(log, { receiptRuns: 0, ledgerRuns: 0, ledgerFailures });

describe('event subscribers (@on)', () => {
  it('should list an event’s subscribers, and refuse @on for a command', () => {
    const container = new Container();
    container.load(memoryModule());
    container.bind(EFFECTS).toConstantValue({ record: async () => undefined });
    const mediator = createMediator(container, { handlers: HANDLERS, middleware: recommendedStack({ rules }) });
    expect(mediator.describe(OrderPaid).subscribers).to.deep.equal(['SendReceipt', 'PostToLedger']);
    expect(mediator.subscriptions().map((s) => s.handler.name)).to.deep.equal(['SendReceipt', 'PostToLedger']);
    expect(() => on(PayOrder as never)(class Wrong {} as never)).to.throw(UseCaseError, /not an event — mark its one/);
  });

  it('on the memory bus: each subscriber runs once per event; a failing one retries alone and takes effect once', async () => {
    reset(3);
    const container = new Container();
    container.load(memoryModule());
    // Effects in a map that joins the memory transaction: a failed attempt leaves nothing behind.
    const effects = new TransactionalMap<string, number>(container.get(MemoryUnitOfWork));
    container.bind(EFFECTS).toConstantValue({
      record: async (who: string, orderId: string) =>
        effects.set(`${who}/${orderId}`, (effects.get(`${who}/${orderId}`) ?? 0) + 1),
    });
    const mediator = createMediator(container, {
      handlers: HANDLERS,
      middleware: recommendedStack({ rules, inbox: true }),
    });
    const queues = await subscribe(mediator, container.get(MemoryBus), 'shop', { maxAttempts: 5 });
    expect(queues).to.deep.equal(['shop.SendReceipt', 'shop.ledger']);
    expect((await mediator.send(PayOrder.from({ orderId: 'o1' }), { actor: { id: 'a' } })).ok).to.equal(true);
    await settled(container);
    expect(log.receiptRuns, 'the receipt ran once, never re-run by the ledger’s retries').to.equal(1);
    expect(log.ledgerRuns, 'the ledger: 3 failures, then success').to.equal(4);
    expect([...effects.entries()]).to.deep.equal([
      ['receipt/o1', 1],
      ['ledger/o1', 1],
    ]);
  });
});

describe('event subscribers (@on) on RabbitMQ and Postgres', function () {
  this.timeout(30_000);
  const services = realServices();

  it('gives each subscriber its own queue: the failing one retries alone and takes effect once', async () => {
    const { amqpUrl, pgUrl, cleanups } = services;
    reset(3);
    const schema = `subs_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
    await createSchema(pgUrl, schema);
    const db: Knex = scopedKnex(pgUrl, schema, 10);
    await db.schema.createTable('effects', (t) => {
      t.text('who').notNullable();
      t.text('order_id').notNullable();
    });
    const topology = isolatedTopology();
    const service = topology.queue('shop');
    const container = new Container();
    container.load(
      knexModule({ knex: db }),
      amqpModule({ url: amqpUrl, exchanges: topology.exchanges, retryDelayMs: () => 20, queueType: queueType() }),
    );
    container.bind(EFFECTS).toDynamicValue((ctx) => {
      const uow = ctx.get(KnexUnitOfWork);
      return {
        record: async (who: string, orderId: string) =>
          void (await (await uow.db())('effects').insert({ who, order_id: orderId })),
      };
    });
    const mediator = createMediator(container, {
      handlers: HANDLERS,
      middleware: recommendedStack({ rules, inbox: true }),
    });
    const queues = await subscribe(mediator, container.get<MessageSource>(TOKENS.MessageSource), service);
    expect(queues).to.deep.equal([`${service}.SendReceipt`, `${service}.ledger`]);
    cleanups.push(
      () => db.raw('DROP SCHEMA IF EXISTS ?? CASCADE', [schema]).then(() => db.destroy()),
      () => deleteTopology(amqpUrl, topology.exchanges, queues),
      () => container.get(AmqpConnection).close(),
    );

    expect((await mediator.send(PayOrder.from({ orderId: 'o2' }), { actor: { id: 'a' } })).ok).to.equal(true);
    await container.get<{ drain(): Promise<void> }>(TOKENS.Relay).drain();
    const effects = async () =>
      (await db('effects').select('who', 'order_id').orderBy('who')) as Array<{ who: string }>;
    for (
      const deadline = Date.now() + 15_000;
      (await effects()).length < 2;
      await new Promise((r) => setTimeout(r, 25))
    )
      if (Date.now() > deadline) expect.fail(`effects after 15 s: ${JSON.stringify(await effects())}`);
    expect(await effects()).to.deep.equal([
      { who: 'ledger', order_id: 'o2' },
      { who: 'receipt', order_id: 'o2' },
    ]);
    expect(log.receiptRuns).to.equal(1);
    expect(log.ledgerRuns).to.equal(4);
    const inbox = await db('ucc_inbox').select('consumer').orderBy('consumer');
    expect(inbox.map((r: { consumer: string }) => r.consumer)).to.deep.equal([
      `${service}.SendReceipt`,
      `${service}.ledger`,
    ]);
  });
});
