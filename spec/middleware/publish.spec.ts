// publish() and the relay: events and jobs go to the outbox in the business transaction and leave only after commit,
// with a stable id; the relay parks poison messages, keeps per-aggregate order and can be awaited
// (DESIGN "Guarantees" 8; RELIABILITY 1, 14, 16, 19).
import { Container, inject, injectable } from 'inversify';
import * as v from 'valibot';
import { MemoryOutbox, MemoryUnitOfWork, memoryModule } from '../../adapters/memory/index.js';
import {
  Command,
  Event,
  TOKENS,
  UseCaseError,
  createMediator,
  fail,
  handles,
  ok,
  type Context,
  type Handler,
  type RequestClass,
} from '../../lib/core/index.js';
import {
  createRelay,
  type MessageBus,
  type OutboxMessage,
  type PublishReport,
  type RelayOptions,
} from '../../lib/messaging/index.js';
import {
  audit,
  everyone,
  idempotency,
  policy,
  publish,
  transition,
  unitOfWork,
  validation,
} from '../../middleware/index.js';
import {
  ACCOUNTS,
  ACCOUNT_HANDLERS,
  Accounts,
  Deposit,
  Explode,
  FakeClock,
  GetBalance,
  Withdraw,
  alice,
  expect,
  wire,
} from '../support/helpers.js';

// ---- fixtures --------------------------------------------------------------------------------------------------

/** Stages two events, then succeeds, fails or throws. */
class Noted extends Event(v.object({ n: v.number() })) {
  static readonly type = 'spec.noted';
}
let afterStage: (() => Promise<void>) | undefined;
class Emit extends Command(v.object({ mode: v.picklist(['ok', 'fail', 'throw']) }))<void, 'refused'> {}
@handles(Emit)
@injectable()
class EmitHandler implements Handler<Emit> {
  async handle(cmd: Emit, ctx: Context<Emit>) {
    ctx.publish(new Noted({ n: 1 }));
    ctx.publish(new Noted({ n: 2 }));
    await afterStage?.();
    if (cmd.mode === 'fail') return fail('refused');
    if (cmd.mode === 'throw') throw new Error('emit exploded');
    return ok(undefined);
  }
}

/** Opens an account and enqueues its first deposit as a job. */
class OpenAccount extends Command(
  v.object({ account: v.string(), initial: v.pipe(v.number(), v.integer(), v.minValue(1)) }),
)<{ account: string }, 'taken'> {}
@handles(OpenAccount)
@injectable()
class OpenAccountHandler implements Handler<OpenAccount> {
  constructor(@inject(ACCOUNTS) private readonly accounts: Accounts) {}
  handle(cmd: OpenAccount, ctx: Context<OpenAccount>) {
    this.accounts.balances.set(cmd.account, 0);
    ctx.enqueue(new Deposit({ account: cmd.account, amount: cmd.initial }), { aggregateId: cmd.account });
    if (cmd.account === 'taken') return fail('taken');
    return ok({ account: cmd.account });
  }
}

/** Publishes, then runs a probe in a beforeCommit hook after publish's (the rows are written, uncommitted). */
let beforeCommitProbe: (() => Promise<void>) | undefined;
class EmitThenFailCommit extends Command(v.object({ n: v.number() }))<void> {}
@handles(EmitThenFailCommit)
@injectable()
class EmitThenFailCommitHandler implements Handler<EmitThenFailCommit> {
  handle(cmd: EmitThenFailCommit, ctx: Context<EmitThenFailCommit>) {
    ctx.publish(new Noted({ n: cmd.n }));
    ctx.beforeCommit(async () => {
      await beforeCommitProbe?.();
      throw new Error('commit failed');
    });
    return ok(undefined);
  }
}

const HANDLERS = [...ACCOUNT_HANDLERS, EmitHandler, OpenAccountHandler, EmitThenFailCommitHandler];
const rules = ([Deposit, Withdraw, Explode, GetBalance, Emit, OpenAccount, EmitThenFailCommit] as RequestClass[]).map(
  (t) => everyone(t),
);
const recommended = () => [
  validation(),
  unitOfWork(),
  audit(),
  idempotency(),
  policy(rules),
  transition([]),
  publish(),
];

function setup(clock = new FakeClock()) {
  beforeCommitProbe = undefined;
  afterStage = undefined;
  return wire({ handlers: HANDLERS, middleware: recommended(), memory: { clock } });
}

/** A bus that records every attempt and fails the messages `failing(message, attempt)` picks. */
class ScriptedBus implements MessageBus {
  readonly attempts: string[][] = [];
  readonly delivered: OutboxMessage[] = [];
  readonly tries = new Map<string, number>();
  constructor(
    private readonly failing: (message: OutboxMessage, attempt: number) => string | undefined = () => undefined,
    private readonly permanent = false,
  ) {}
  async publish(messages: readonly OutboxMessage[]): Promise<PublishReport> {
    await new Promise((resolve) => setImmediate(resolve)); // a broker answers asynchronously
    this.attempts.push(messages.map((m) => m.id));
    const sent: string[] = [];
    const failed: Array<{ id: string; error: string; permanent: boolean }> = [];
    for (const m of messages) {
      const attempt = (this.tries.get(m.id) ?? 0) + 1;
      this.tries.set(m.id, attempt);
      const error = this.failing(m, attempt);
      if (error) failed.push({ id: m.id, error, permanent: this.permanent });
      else {
        sent.push(m.id);
        this.delivered.push(m);
      }
    }
    return { sent, failed };
  }
}

/** A standalone outbox + relay over a scripted bus, filled with committed messages. */
function relayOver(bus: MessageBus, options: RelayOptions = {}) {
  const outbox = new MemoryOutbox(new MemoryUnitOfWork());
  const relay = createRelay(outbox, bus, { backoffMs: [1, 4], ...options });
  let n = 0;
  const message = (aggregateId?: string, name?: string): OutboxMessage => {
    const label = name ?? `m${++n}`;
    if (name) n++;
    return {
      id: `${label}-${n}`,
      kind: 'event',
      type: 'spec.noted',
      payload: { label },
      occurredAt: new Date(0).toISOString(),
      aggregateId,
      headers: {},
    };
  };
  return { outbox, relay, message };
}

const labels = (messages: readonly OutboxMessage[]) => messages.map((m) => (m.payload as { label: string }).label);

// ---- specs -----------------------------------------------------------------------------------------------------

describe('publish()', () => {
  it('should deliver events only after commit, with their type, payload, aggregate and headers', async () => {
    const w = setup();
    const result = await w.mediator.send(Deposit.from({ account: 'a', amount: 5 }), {
      ...alice,
      tenant: 't1',
      requestId: 'req-1',
    });
    expect(result.ok).to.equal(true);
    await w.settled();
    expect(w.bus.published).to.have.length(1);
    const [message] = w.bus.published;
    expect(message).to.deep.include({
      kind: 'event',
      type: 'account.deposited',
      payload: { account: 'a', amount: 5 },
      aggregateId: 'a',
      occurredAt: '2026-01-01T00:00:00.000Z',
      headers: { requestId: 'req-1', tenant: 't1', causationType: 'Deposit', actor: 'alice', actorRoles: 'clerk' },
    });
    expect(message!.id).to.match(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(await w.outbox.pending()).to.equal(0);
  });

  it('should keep staged events out of the outbox while the handler runs', async () => {
    const w = setup();
    const during: number[] = [];
    afterStage = async () => {
      await w.relay.drain(); // even a relay pass running now finds nothing
      during.push(w.bus.published.length, await w.outbox.pending());
    };
    expect((await w.mediator.send(Emit.from({ mode: 'ok' }), alice)).ok).to.equal(true);
    expect(during).to.deep.equal([0, 0]);
    await w.settled();
    expect(w.bus.published.map((m) => [m.type, (m.payload as { n: number }).n])).to.deep.equal([
      ['spec.noted', 1],
      ['spec.noted', 2],
    ]);
  });

  describe('nothing leaves on failure', () => {
    for (const mode of ['fail', 'throw'] as const) {
      it(`should write and deliver no event when the handler ${mode}s`, async () => {
        const w = setup();
        const send = w.mediator.send(Emit.from({ mode }), alice);
        if (mode === 'throw') await expect(send).to.be.rejectedWith(Error, 'emit exploded');
        else expect((await send).ok).to.equal(false);
        expect(await w.outbox.pending()).to.equal(0);
        await w.settled();
        expect(w.bus.published).to.have.length(0);
      });
    }

    it('should write and deliver no event when the commit fails after the outbox rows were written', async () => {
      const w = setup();
      await expect(w.mediator.send(EmitThenFailCommit.from({ n: 1 }), alice)).to.be.rejectedWith(
        Error,
        'commit failed',
      );
      expect(await w.outbox.pending()).to.equal(0);
      await w.settled();
      expect(w.bus.published).to.have.length(0);
    });

    // Regression: the memory outbox used to hand rows of a still-open transaction to a relay pass.
    it('should not let a relay pass see outbox rows of a transaction that has not committed', async () => {
      const w = setup();
      const during: number[] = [];
      beforeCommitProbe = async () => {
        await w.relay.drain(); // a relay pass that happens to run now (woken by another commit, or after a backoff)
        during.push(w.bus.published.length, await w.outbox.pending());
      };
      await expect(w.mediator.send(EmitThenFailCommit.from({ n: 1 }), alice)).to.be.rejectedWith(
        Error,
        'commit failed',
      );
      expect(during).to.deep.equal([0, 0]);
      await w.settled();
      expect(w.bus.published).to.have.length(0);
    });
  });

  it('should give every message a unique id', async () => {
    const w = setup();
    await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        w.mediator.send(Deposit.from({ account: `a${i % 3}`, amount: i + 1 }), alice),
      ),
    );
    await w.mediator.send(Emit.from({ mode: 'ok' }), alice);
    await w.settled();
    const ids = w.bus.published.map((m) => m.id);
    expect(ids).to.have.length(22);
    expect(new Set(ids).size).to.equal(22);
  });

  it("should keep a message's id stable across redeliveries", async () => {
    const bus = new ScriptedBus((_m, attempt) => (attempt <= 2 ? 'channel closed' : undefined));
    const container = new Container();
    container.load(memoryModule());
    const outbox = container.get(MemoryOutbox);
    const relay = createRelay(outbox, bus, { backoffMs: [1, 4] });
    container.rebind(TOKENS.Relay).toConstantValue(relay);
    container.bind(ACCOUNTS).to(Accounts).inSingletonScope();
    const mediator = createMediator(container, { handlers: HANDLERS, middleware: recommended() });
    await mediator.send(Deposit.from({ account: 'a', amount: 5 }), alice);
    await relay.drain();
    expect(bus.attempts).to.have.length(3);
    const [id] = bus.attempts[0]!;
    expect(bus.attempts).to.deep.equal([[id], [id], [id]]);
    expect(bus.delivered.map((m) => m.id)).to.deep.equal([id]);
    expect(await outbox.pending()).to.equal(0);
  });

  it('should throw UseCaseError(misuse) from ctx.publish when publish() is not in the stack', async () => {
    const w = wire({
      handlers: HANDLERS,
      middleware: [validation(), unitOfWork(), audit(), idempotency(), policy(rules)],
    });
    await expect(w.mediator.send(Deposit.from({ account: 'a', amount: 5 }), alice))
      .to.be.rejectedWith(UseCaseError, /ctx\.publish\(account\.deposited\) in Deposit needs publish\(\)/)
      .and.eventually.have.property('kind', 'misuse');
    expect(w.accounts.balances.get('a')).to.equal(undefined);
    await expect(w.mediator.send(OpenAccount.from({ account: 'b', initial: 5 }), alice)).to.be.rejectedWith(
      UseCaseError,
      /ctx\.enqueue\(Deposit\)/,
    );
  });

  it('should write ctx.enqueue(new Deposit(...)) as a job message of type Deposit, delivered after commit', async () => {
    const w = setup();
    const jobs: OutboxMessage[] = [];
    w.bus.subscribe('Deposit', (m) => {
      jobs.push(m);
    });
    expect(await w.mediator.send(OpenAccount.from({ account: 'new', initial: 25 }), alice)).to.deep.equal({
      ok: true,
      value: { account: 'new' },
    });
    await w.settled();
    expect(jobs).to.have.length(1);
    expect(jobs[0]).to.deep.include({
      kind: 'job',
      type: 'Deposit',
      payload: { account: 'new', amount: 25 },
      aggregateId: 'new',
    });
    expect(jobs[0]!.headers).to.deep.include({ causationType: 'OpenAccount', actor: 'alice' });
    // A consumer runs the job through the mediator.
    expect(await w.mediator.send(Deposit.from(jobs[0]!.payload), alice)).to.deep.equal({
      ok: true,
      value: { balance: 25 },
    });
  });

  it('should drop staged jobs with a rolled-back transaction', async () => {
    const w = setup();
    const result = await w.mediator.send(OpenAccount.from({ account: 'taken', initial: 5 }), alice);
    expect(!result.ok && result.failure).to.include({ kind: 'domain', code: 'taken' });
    expect(w.accounts.balances.has('taken')).to.equal(false);
    expect(await w.outbox.pending()).to.equal(0);
    await w.settled();
    expect(w.bus.published).to.have.length(0);
  });

  describe('relay', () => {
    it('should park a message after maxAttempts with its error and keep delivering the others', async () => {
      const bus = new ScriptedBus((m) =>
        (m.payload as { label: string }).label === 'poison' ? 'NOT_FOUND - no exchange' : undefined,
      );
      const { outbox, relay, message } = relayOver(bus, { maxAttempts: 3 });
      await outbox.add([message(), message(undefined, 'poison'), message(), message()]);
      await relay.drain();
      expect(labels(bus.delivered)).to.deep.equal(['m1', 'm3', 'm4']);
      const parked = outbox.parked();
      expect(parked).to.have.length(1);
      expect(parked[0]).to.deep.include({ error: 'NOT_FOUND - no exchange', attempts: 3 });
      expect(labels([parked[0]!.message])).to.deep.equal(['poison']);
      expect(bus.tries.get(parked[0]!.message.id)).to.equal(3);
      expect(await outbox.pending()).to.equal(0);
      // Later messages still flow.
      await outbox.add([message()]);
      await relay.drain();
      expect(labels(bus.delivered)).to.deep.equal(['m1', 'm3', 'm4', 'm5']);
    });

    it('should park a permanently failed message at once', async () => {
      const bus = new ScriptedBus(
        (m) => ((m.payload as { label: string }).label === 'poison' ? 'unroutable' : undefined),
        true,
      );
      const { outbox, relay, message } = relayOver(bus, { maxAttempts: 5 });
      await outbox.add([message(undefined, 'poison'), message()]);
      await relay.drain();
      expect(outbox.parked().map((p) => [p.error, p.attempts])).to.deep.equal([['unroutable', 1]]);
      expect(labels(bus.delivered)).to.deep.equal(['m2']);
    });

    it('should treat a bus that throws as unreachable: back off, count no attempt, park nothing, deliver once it is back', async () => {
      let down = 5;
      const inner = new ScriptedBus();
      const bus: MessageBus = {
        publish: async (batch) => {
          if (down-- > 0) throw new Error('connection refused');
          return inner.publish(batch);
        },
      };
      const { outbox, relay, message } = relayOver(bus, { maxAttempts: 2 });
      await outbox.add([message(), message()]);
      await relay.drain();
      expect(down, 'it kept trying past maxAttempts').to.be.below(0);
      expect(outbox.parked()).to.deep.equal([]);
      expect(labels(inner.delivered)).to.deep.equal(['m1', 'm2']);
    });

    it('should retry unconfirmed messages without counting an attempt', async () => {
      let calls = 0;
      const inner = new ScriptedBus();
      const bus: MessageBus = {
        publish: async (batch) =>
          ++calls <= 3 ? { sent: [], failed: [], unconfirmed: batch.map((m) => m.id) } : inner.publish(batch),
      };
      const { outbox, relay, message } = relayOver(bus, { maxAttempts: 1 });
      await outbox.add([message()]);
      await relay.drain();
      expect(outbox.parked()).to.deep.equal([]);
      expect(labels(inner.delivered)).to.deep.equal(['m1']);
    });

    // Regression: message 2 of an aggregate used to ride in the same batch as a failing message 1.
    it('should not deliver a later message of an aggregate before an earlier one that failed, while others flow', async () => {
      const bus = new ScriptedBus((m, attempt) =>
        (m.payload as { label: string }).label === 'A1' && attempt <= 2 ? 'nack' : undefined,
      );
      const { outbox, relay, message } = relayOver(bus, { maxAttempts: 5 });
      await outbox.add([
        message('A', 'A1'),
        message('B', 'B1'),
        message('A', 'A2'),
        message('B', 'B2'),
        message(undefined, 'C1'),
      ]);
      await relay.drain();
      const order = labels(bus.delivered);
      expect(order).to.have.members(['A1', 'A2', 'B1', 'B2', 'C1']);
      expect(order.indexOf('A1')).to.be.lessThan(order.indexOf('A2'));
      // Aggregate B (and messages without an aggregate) kept flowing while A1 was retried.
      expect(order.indexOf('B1')).to.be.lessThan(order.indexOf('A1'));
      expect(order.indexOf('B2')).to.be.lessThan(order.indexOf('A1'));
      expect(order.indexOf('C1')).to.be.lessThan(order.indexOf('A1'));
    });

    it('should keep per-aggregate order when every publish succeeds', async () => {
      const bus = new ScriptedBus();
      const { outbox, relay, message } = relayOver(bus, { batchSize: 2 });
      await outbox.add(['A1', 'B1', 'A2', 'A3', 'B2', 'A4'].map((l) => message(l[0], l)));
      await relay.drain();
      const order = labels(bus.delivered);
      expect(order.filter((l) => l.startsWith('A'))).to.deep.equal(['A1', 'A2', 'A3', 'A4']);
      expect(order.filter((l) => l.startsWith('B'))).to.deep.equal(['B1', 'B2']);
    });

    it('should make drain() wait until every committed message was delivered', async () => {
      const bus = new ScriptedBus((_m, attempt) => (attempt === 1 ? 'broker busy' : undefined));
      const { outbox, relay, message } = relayOver(bus, { batchSize: 3 });
      await outbox.add(Array.from({ length: 10 }, () => message()));
      expect(bus.delivered).to.have.length(0);
      await relay.drain();
      expect(bus.delivered).to.have.length(10);
      expect(await outbox.pending()).to.equal(0);
    });

    // Regression: drain() used to wait for a whole relay pass, ignoring its deadline while the bus was down.
    it('should make drain() reject after its timeout while the bus is down', async () => {
      const bus = new ScriptedBus(() => 'broker down');
      const { outbox, relay, message } = relayOver(bus, { maxAttempts: 200, backoffMs: [1, 1] });
      await outbox.add([message()]);
      try {
        await expect(relay.drain(30)).to.be.rejectedWith(Error, /did not drain within 30 ms: 1 messages pending/);
        expect(bus.delivered).to.have.length(0);
        expect(await outbox.pending()).to.equal(1); // nothing lost: the row waits in the outbox
      } finally {
        await relay.stop();
      }
    });

    it("should deliver through wire()'s relay after settled()", async () => {
      const w = setup();
      await Promise.all(
        Array.from({ length: 5 }, (_, i) => w.mediator.send(Deposit.from({ account: 'a', amount: i + 1 }), alice)),
      );
      await w.settled();
      expect(w.bus.published.map((m) => (m.payload as { amount: number }).amount)).to.have.members([1, 2, 3, 4, 5]);
      expect(await w.outbox.pending()).to.equal(0);
    });
  });
});
