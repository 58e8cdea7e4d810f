// The custom middleware of docs/middleware.md, run as written: rateLimit() between policy and transition.
import { UseCaseError } from '../../lib/core/index.js';
import {
  audit,
  idempotency,
  policy,
  publish,
  rule,
  transition,
  unitOfWork,
  validation,
} from '../../middleware/index.js';
import { rateLimit } from '../../samples/middleware/rate-limit.js';
import { Deposit, FakeClock, GetBalance, expect, wire } from '../support/helpers.js';

const onlyClerks = [
  rule(Deposit, ({ meta }) => meta.actor?.roles?.includes('clerk') === true),
  rule(GetBalance, () => true),
];
const ann = { actor: { id: 'ann', roles: ['clerk'] } };
const bob = { actor: { id: 'bob', roles: ['clerk'] } };
const eve = { actor: { id: 'eve', roles: [] } };

function withLimit(clock: FakeClock) {
  return wire({
    memory: { clock },
    middleware: [
      validation(),
      unitOfWork(),
      audit(),
      idempotency(),
      policy(onlyClerks),
      rateLimit({ limit: 2, windowMs: 1_000 }),
      transition([]),
      publish(),
    ],
  });
}

describe('rateLimit() (samples/middleware/rate-limit.ts)', () => {
  it('should sit between policy and transition in the effective stack', () => {
    const { mediator } = withLimit(new FakeClock());
    expect(mediator.describe(Deposit).middleware).to.deep.equal([
      'validation',
      'unitOfWork',
      'audit',
      'idempotency',
      'policy',
      'rateLimit',
      'transition',
      'publish',
    ]);
  });

  it("should refuse an actor's third command in a window, writing nothing, and let it through once the window ends", async () => {
    const clock = new FakeClock();
    const { mediator, accounts, audit: store } = withLimit(clock);
    const deposit = (amount: number, who = ann) => mediator.send(Deposit.from({ account: 'a', amount }), who);
    expect((await deposit(1)).ok).to.equal(true);
    expect((await deposit(2)).ok).to.equal(true);
    const third = await deposit(4);
    expect(third).to.deep.include({ ok: false });
    expect(third).to.have.nested.property('failure.kind', 'unavailable');
    expect(third)
      .to.have.nested.property('failure.message')
      .that.matches(/ann sent more than 2 commands in 1000 ms/);
    expect(accounts.balances.get('a'), 'the refused deposit changed nothing').to.equal(3);
    expect((await deposit(8, bob)).ok, 'another actor has a window of its own').to.equal(true);
    expect((await mediator.send(GetBalance.from({ account: 'a' }), ann)).ok, 'queries pass').to.equal(true);
    clock.advance(1_000);
    expect((await deposit(16)).ok, 'a new window').to.equal(true);
    expect(accounts.balances.get('a')).to.equal(3 + 8 + 16);
    const outcomes = (await store.list({ order: 'asc' })).map((r) => `${r.actor}:${r.outcome}`);
    expect(outcomes).to.deep.equal(['ann:ok', 'ann:ok', 'ann:unavailable', 'bob:ok', 'ann:ok']);
  });

  it('should not count a send the policy denied (policy runs first)', async () => {
    const { mediator } = withLimit(new FakeClock());
    for (let i = 0; i < 3; i++) {
      const denied = await mediator.send(Deposit.from({ account: 'e', amount: 1 }), eve);
      expect(denied).to.have.nested.property('failure.kind', 'forbidden');
    }
    const clerkEve = { actor: { id: 'eve', roles: ['clerk'] } };
    expect((await mediator.send(Deposit.from({ account: 'e', amount: 1 }), clerkEve)).ok).to.equal(true);
  });

  it('should be refused in front of policy by its own rules, at createMediator', () => {
    expect(() =>
      wire({ middleware: [validation(), unitOfWork(), rateLimit({ limit: 1, windowMs: 1 }), policy(onlyClerks)] }),
    ).to.throw(UseCaseError, /rateLimit must come after policy — move policy\(\) before rateLimit\(\)/);
  });
});
