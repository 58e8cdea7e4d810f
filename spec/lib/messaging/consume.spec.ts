// Consumers on the memory bus: jobs and events through the pipeline, once per message, retries and dead letters.
import { Container, injectable } from 'inversify';
import * as v from 'valibot';
import { MemoryBus, memoryModule } from '../../../adapters/memory/index.js';
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
import { settled } from '../../../lib/testing/index.js';
import { consume, type OutboxMessage } from '../../../lib/messaging/index.js';
import { work } from '../../../lib/jobs/index.js';
import { everyone, recommendedStack } from '../../../middleware/index.js';
import {
  ACCOUNTS,
  ACCOUNT_HANDLERS,
  Accounts,
  Deposit,
  Deposited,
  alice,
  expect,
  wire,
} from '../../support/helpers.js';

class OpenAccount extends Command(v.object({ account: v.string() }))<{ queued: boolean }, 'refused'> {}
@handles(OpenAccount)
@injectable()
class OpenAccountHandler implements Handler<OpenAccount> {
  handle(cmd: OpenAccount, ctx: Context<OpenAccount>) {
    ctx.enqueue(new Deposit({ account: cmd.account, amount: 100 })); // welcome bonus, as a job after commit
    return cmd.account.startsWith('refuse') ? fail('refused') : ok({ queued: true });
  }
}

/** A consumer of Deposited events that can be told to fail. */
const seen: string[] = [];
let failuresLeft = 0;
class Flaky extends Event(v.object({ account: v.string(), amount: v.number() })) {
  static readonly type = 'account.deposited';
}
@handles(Flaky)
@injectable()
class FlakyHandler implements Handler<Flaky> {
  handle(event: Flaky) {
    if (failuresLeft-- > 0) throw new Error('downstream is down');
    seen.push(event.account);
    return ok(undefined);
  }
}

function setup() {
  seen.length = 0;
  failuresLeft = 0;
  const rules = [everyone(OpenAccount), everyone(Deposit), everyone(Flaky)];
  const w = wire({
    middleware: recommendedStack({ rules, inbox: true }),
    handlers: [...ACCOUNT_HANDLERS, OpenAccountHandler, FlakyHandler],
  });
  return w;
}

describe('work() and consume() on the memory bus', () => {
  it('should run an enqueued job after commit, through the pipeline, as the sender', async () => {
    const w = setup();
    await work(w.mediator, w.bus, [Deposit]);
    await w.mediator.send(OpenAccount.from({ account: 'j1' }), alice);
    await w.settled();
    expect(w.accounts.balances.get('j1')).to.equal(100);
    const [record] = await w.audit.list({ order: 'desc', limit: 1 });
    expect(record).to.include({ type: 'Deposit', actor: 'alice', outcome: 'ok' });
  });

  it('should keep a job until a worker starts (a job queue is durable)', async () => {
    const w = setup();
    await w.mediator.send(OpenAccount.from({ account: 'j2' }), alice);
    await w.settled();
    expect(w.accounts.balances.get('j2')).to.equal(undefined);
    await work(w.mediator, w.bus, [Deposit]);
    await w.settled();
    expect(w.accounts.balances.get('j2')).to.equal(100);
  });

  it('should never run a job whose sending transaction rolled back', async () => {
    const w = setup();
    await work(w.mediator, w.bus, [Deposit]);
    expect(await w.mediator.send(OpenAccount.from({ account: 'refuse-1' }), alice)).to.have.nested.property(
      'failure.code',
      'refused',
    );
    await w.settled();
    expect(w.bus.published).to.deep.equal([]);
    expect(w.accounts.runs('Deposit')).to.equal(0);
  });

  it('should take effect once when a message is delivered twice, also to two workers at once (inbox)', async () => {
    const w = setup();
    await work(w.mediator, w.bus, [Deposit]);
    await work(w.mediator, w.bus, [Deposit]); // a second worker on the same job queue
    await w.mediator.send(OpenAccount.from({ account: 'j3' }), alice);
    await w.settled();
    const job = w.bus.published.find((m) => m.kind === 'job')!;
    await Promise.all([w.bus.publish([job]), w.bus.publish([job])]); // redeliveries, racing
    await w.settled();
    expect(w.accounts.balances.get('j3')).to.equal(100);
    expect(w.accounts.runs('Deposit')).to.equal(1);
  });

  it('should retry a failing event consumer with backoff and then process it', async () => {
    const w = setup();
    await consume(w.mediator, w.bus, 'notifier', [Flaky]);
    failuresLeft = 2;
    await w.mediator.send(Deposit.from({ account: 'e1', amount: 5 }), alice);
    await w.settled();
    expect(seen).to.deep.equal(['e1']);
    expect(w.bus.deadLetters('notifier')).to.deep.equal([]);
  });

  it('should dead-letter a poison message after maxAttempts and keep the queue flowing', async () => {
    const w = setup();
    await consume(w.mediator, w.bus, 'notifier', [Flaky], { maxAttempts: 3 });
    failuresLeft = 3;
    await w.mediator.send(Deposit.from({ account: 'poison', amount: 5 }), alice);
    await w.settled();
    await w.mediator.send(Deposit.from({ account: 'after', amount: 5 }), alice);
    await w.settled();
    expect(seen).to.deep.equal(['after']);
    const dead = w.bus.deadLetters('notifier');
    expect(dead.map((d) => [d.message.payload, d.attempts])).to.deep.equal([[{ account: 'poison', amount: 5 }, 3]]);
    expect(dead[0]!.reason).to.match(/downstream is down/);
  });

  it('should dead-letter at once a message that can never parse', async () => {
    const w = setup();
    await consume(w.mediator, w.bus, 'notifier', [Flaky]);
    const base: OutboxMessage = {
      id: 'bad-1',
      kind: 'event',
      type: Deposited.type,
      payload: { account: 7 },
      occurredAt: new Date().toISOString(),
      headers: {},
    };
    await w.bus.publish([base]);
    await w.settled();
    const [dead] = w.bus.deadLetters('notifier');
    expect(dead).to.deep.include({ attempts: 1 });
    expect(dead!.reason).to.match(/account/);
  });

  it('should name the job queue after the jobs exchange and the command type', () => {
    expect(setup().mediator.ports.queues.job('Deposit')).to.equal('usecasecore.jobs.Deposit');
  });

  it('should route jobs to the queue its workers read when TOKENS.Exchanges renames the exchanges', async () => {
    const container = new Container();
    container.bind(TOKENS.Exchanges).toConstantValue({ events: 'shop.events', jobs: 'shop.jobs', dead: 'shop.dead' });
    container.load(memoryModule());
    container.bind(ACCOUNTS).to(Accounts).inSingletonScope();
    const mediator = createMediator(container, {
      handlers: [...ACCOUNT_HANDLERS, OpenAccountHandler],
      middleware: recommendedStack({ rules: [everyone(OpenAccount), everyone(Deposit)], inbox: true }),
    });
    const bus = container.get(MemoryBus);
    await work(mediator, bus, [Deposit]);
    const sent = await mediator.send(OpenAccount.from({ account: 'x1' }), alice);
    expect(sent.ok).to.equal(true);
    await settled(container);
    expect(container.get<Accounts>(ACCOUNTS).balances.get('x1'), 'the worker of shop.jobs.Deposit ran it').to.equal(
      100,
    );
    expect(mediator.ports.queues.job('Deposit')).to.equal('shop.jobs.Deposit');
  });
});
