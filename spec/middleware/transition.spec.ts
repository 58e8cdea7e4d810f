// transition(): declared lifecycles; an illegal transition is invalid_transition with from/to/allowed, changes
// nothing, publishes nothing and is audited (DESIGN "Guarantees" 2 and 5; RELIABILITY 28).
import { inject, injectable } from 'inversify';
import * as v from 'valibot';
import { MemoryUnitOfWork, TransactionalMap } from '../../adapters/memory/index.js';
import {
  Command,
  Event,
  UseCaseError,
  handles,
  lifecycle,
  notFound,
  ok,
  type Context,
  type Handler,
  type RequestClass,
  type StateMachine,
} from '../../lib/core/index.js';
import {
  audit,
  everyone,
  guard,
  idempotency,
  policy,
  publish,
  transition,
  unitOfWork,
  validation,
  type TransitionGuard,
} from '../../middleware/index.js';
import { alice, expect, wire } from '../support/helpers.js';

// ---- fixtures: orders over a TransactionalMap --------------------------------------------------------------------

type Status = 'placed' | 'paid' | 'shipped' | 'cancelled';
interface Order {
  readonly id: string;
  readonly status: Status;
}

const ORDERS = Symbol.for('spec.transition.Orders');
@injectable()
class Orders {
  readonly map: TransactionalMap<string, Order>;
  readonly calls = new Map<string, number>();
  constructor(@inject(MemoryUnitOfWork) uow: MemoryUnitOfWork) {
    this.map = new TransactionalMap(uow);
  }
  count(name: string): void {
    this.calls.set(name, (this.calls.get(name) ?? 0) + 1);
  }
  runs(name: string): number {
    return this.calls.get(name) ?? 0;
  }
}

const orderLifecycle = lifecycle<Status, 'pay' | 'ship' | 'cancel'>({
  pay: { from: ['placed'], to: 'paid' },
  ship: { from: ['paid'], to: 'shipped' },
  cancel: { from: ['placed', 'paid'], to: 'cancelled' },
});

class OrderChanged extends Event(v.object({ orderId: v.string(), status: v.string() })) {
  static readonly type = 'order.changed';
}

const byId = v.object({ orderId: v.pipe(v.string(), v.minLength(1)) });
class PayOrder extends Command(byId)<{ status: Status }> {}
class ShipOrder extends Command(byId)<{ status: Status }> {}
class CancelOrder extends Command(byId)<{ status: Status }> {}
/** An action the lifecycle does not declare (a programmer error). */
class RefundOrder extends Command(byId)<{ status: Status }> {}

/** One handler shape per action: not_found when missing, else move to the action's target and publish. */
// (The four commands share one shape, so one handler type serves them all.)
function orderHandler(type: RequestClass<PayOrder>, to: Status) {
  @handles(type)
  @injectable()
  class OrderHandler implements Handler<PayOrder, Order | undefined> {
    constructor(@inject(ORDERS) private readonly orders: Orders) {}
    load(cmd: PayOrder) {
      return this.orders.map.get(cmd.orderId);
    }
    async handle(cmd: PayOrder, ctx: Context<PayOrder, Order | undefined>) {
      this.orders.count(type.name);
      const order = ctx.state;
      if (!order) return notFound(`No order ${cmd.orderId}`);
      await new Promise((resolve) => setImmediate(resolve)); // let a concurrent send interleave if it could
      this.orders.map.set(order.id, { ...order, status: to });
      ctx.publish(new OrderChanged({ orderId: order.id, status: to }), { aggregateId: order.id });
      return ok({ status: to });
    }
  }
  Object.defineProperty(OrderHandler, 'name', { value: `${type.name}Handler` });
  return OrderHandler;
}
const HANDLERS = [
  orderHandler(PayOrder, 'paid'),
  orderHandler(ShipOrder, 'shipped'),
  orderHandler(CancelOrder, 'cancelled'),
  orderHandler(RefundOrder, 'placed'),
];

const current = (order: Order | undefined) => order?.status;
const GUARDS: TransitionGuard[] = [
  guard(PayOrder, orderLifecycle, 'pay', current),
  guard(ShipOrder, orderLifecycle, 'ship', current),
  guard(CancelOrder, orderLifecycle, 'cancel', current),
  guard(RefundOrder, orderLifecycle, 'refund', current),
];

function setup(guards: readonly TransitionGuard[] = GUARDS) {
  const w = wire({
    handlers: HANDLERS,
    middleware: [
      validation(),
      unitOfWork(),
      audit(),
      idempotency(),
      policy([PayOrder, ShipOrder, CancelOrder, RefundOrder].map((t) => everyone(t))),
      transition(guards),
      publish(),
    ],
  });
  w.container.bind(ORDERS).to(Orders).inSingletonScope();
  const orders = w.container.get<Orders>(ORDERS);
  const seed = (id: string, status: Status) => orders.map.set(id, { id, status });
  return { ...w, orders, seed };
}

// ---- specs -----------------------------------------------------------------------------------------------------

describe('transition()', () => {
  describe('an illegal transition', () => {
    const cases: Array<[RequestClass<PayOrder>, string, Status, Status, Status[]]> = [
      [ShipOrder, 'ship', 'placed', 'shipped', ['paid']],
      [PayOrder, 'pay', 'paid', 'paid', ['placed']],
      [PayOrder, 'pay', 'shipped', 'paid', ['placed']],
      [CancelOrder, 'cancel', 'shipped', 'cancelled', ['placed', 'paid']],
      [ShipOrder, 'ship', 'cancelled', 'shipped', ['paid']],
    ];
    for (const [Type, action, from, to, allowed] of cases) {
      it(`should refuse ${Type.name} from "${from}" with invalid_transition, change nothing, publish nothing, audit once`, async () => {
        const w = setup();
        w.seed('o1', from);
        const result = await w.mediator.send(Type.from({ orderId: 'o1' }), alice);
        expect(result).to.deep.equal({
          ok: false,
          failure: {
            kind: 'invalid_transition',
            from,
            to,
            allowed,
            message: `Cannot ${action} from "${from}" — allowed from: ${allowed.join(', ')}`,
          },
        });
        expect(w.orders.map.get('o1')).to.deep.equal({ id: 'o1', status: from });
        expect(w.orders.runs(Type.name)).to.equal(0);
        expect(await w.outbox.pending()).to.equal(0);
        await w.settled();
        expect(w.bus.published).to.have.length(0);
        const records = await w.audit.list();
        expect(records.map((r) => [r.outcome, r.type])).to.deep.equal([['invalid_transition', Type.name]]);
      });
    }
  });

  it('should run a legal transition, change the state and publish after commit', async () => {
    const w = setup();
    w.seed('o1', 'placed');
    expect(await w.mediator.send(PayOrder.from({ orderId: 'o1' }), alice)).to.deep.equal({
      ok: true,
      value: { status: 'paid' },
    });
    expect(await w.mediator.send(ShipOrder.from({ orderId: 'o1' }), alice)).to.deep.equal({
      ok: true,
      value: { status: 'shipped' },
    });
    expect(w.orders.map.get('o1')).to.deep.equal({ id: 'o1', status: 'shipped' });
    await w.settled();
    expect(w.bus.published.map((m) => [m.type, (m.payload as { status: string }).status, m.aggregateId])).to.deep.equal(
      [
        ['order.changed', 'paid', 'o1'],
        ['order.changed', 'shipped', 'o1'],
      ],
    );
    expect((await w.audit.list()).map((r) => r.outcome)).to.deep.equal(['ok', 'ok']);
  });

  it('should let the handler answer when current() returns undefined (e.g. not_found)', async () => {
    const w = setup();
    const result = await w.mediator.send(ShipOrder.from({ orderId: 'missing' }), alice);
    expect(result).to.deep.equal({ ok: false, failure: { kind: 'not_found', message: 'No order missing' } });
    expect(w.orders.runs('ShipOrder')).to.equal(1);
    expect((await w.audit.list()).map((r) => r.outcome)).to.deep.equal(['not_found']);
  });

  it('should judge each of three concurrent transitions against the state the previous one committed', async () => {
    const w = setup();
    w.seed('o1', 'placed');
    const results = await Promise.all([
      w.mediator.send(PayOrder.from({ orderId: 'o1' }), alice),
      w.mediator.send(CancelOrder.from({ orderId: 'o1' }), alice),
      w.mediator.send(PayOrder.from({ orderId: 'o1' }), alice),
    ]);
    // Whatever ran first, the state judged by every later send is the committed one.
    expect(results[0]).to.deep.equal({ ok: true, value: { status: 'paid' } });
    expect(results[1]).to.deep.equal({ ok: true, value: { status: 'cancelled' } });
    expect(!results[2]!.ok && results[2]!.failure).to.include({
      kind: 'invalid_transition',
      from: 'cancelled',
      to: 'paid',
    });
    expect(w.orders.map.get('o1')!.status).to.equal('cancelled');
    await w.settled();
    expect(w.bus.published).to.have.length(2);
  });

  it('should judge a transition in the same transaction as the write: two concurrent pays, one wins', async () => {
    const w = setup();
    w.seed('o1', 'placed');
    const results = await Promise.all([
      w.mediator.send(PayOrder.from({ orderId: 'o1' }), alice),
      w.mediator.send(PayOrder.from({ orderId: 'o1' }), alice),
    ]);
    expect(results.map((r) => (r.ok ? 'ok' : r.failure.kind)).sort()).to.deep.equal(['invalid_transition', 'ok']);
    expect(w.orders.runs('PayOrder')).to.equal(1);
    await w.settled();
    expect(w.bus.published).to.have.length(1);
  });

  it('should accept another state-machine engine through the StateMachine port', async () => {
    const asked: string[] = [];
    const engine: StateMachine = {
      check(from, action) {
        asked.push(`${from}->${action}`);
        return from === 'placed' ? { ok: true, to: 'paid' } : { ok: false, to: 'paid', allowed: ['placed'] };
      },
    };
    const w = setup([guard(PayOrder, engine, 'pay', current)]);
    w.seed('o1', 'placed');
    w.seed('o2', 'shipped');
    expect((await w.mediator.send(PayOrder.from({ orderId: 'o1' }), alice)).ok).to.equal(true);
    const refused = await w.mediator.send(PayOrder.from({ orderId: 'o2' }), alice);
    expect(!refused.ok && refused.failure).to.include({ kind: 'invalid_transition', from: 'shipped', to: 'paid' });
    expect(asked).to.deep.equal(['placed->pay', 'shipped->pay']);
    // A type without a guard is not checked.
    w.seed('o3', 'shipped');
    expect((await w.mediator.send(ShipOrder.from({ orderId: 'o3' }), alice)).ok).to.equal(true);
  });

  it('should reject (programmer error) an action the lifecycle does not declare, changing nothing', async () => {
    const w = setup();
    w.seed('o1', 'placed');
    await expect(w.mediator.send(RefundOrder.from({ orderId: 'o1' }), alice))
      .to.be.rejectedWith(UseCaseError, /no action "refund"/)
      .and.eventually.have.property('kind', 'misuse');
    expect(w.orders.map.get('o1')!.status).to.equal('placed');
    expect(w.orders.runs('RefundOrder')).to.equal(0);
    expect((await w.audit.list()).map((r) => r.outcome)).to.deep.equal(['error']);
  });
});
