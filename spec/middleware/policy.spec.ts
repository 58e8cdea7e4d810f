// policy(): deny by default, a throwing rule denies, rules judge state loaded in the transaction, every denial is
// audited once (DESIGN "Guarantees" 2 and 4; RELIABILITY 26, 27).
import type { Context, Decision, Policy } from '../../lib/core/index.js';
import {
  audit,
  everyone,
  idempotency,
  policy,
  publish,
  rule,
  transition,
  unitOfWork,
  validation,
  type PolicyRule,
} from '../../middleware/index.js';
import { Deposit, Explode, GetBalance, Withdraw, alice, expect, wire } from '../support/helpers.js';

function setup(rules: readonly PolicyRule[] | Policy) {
  return wire({
    middleware: [validation(), unitOfWork(), audit(), idempotency(), policy(rules), transition([]), publish()],
  });
}

type Wired = ReturnType<typeof setup>;

/** Asserts a forbidden result that ran nothing, wrote nothing and was audited exactly once. */
async function expectDenied(w: Wired, result: { ok: boolean }, message?: string | RegExp) {
  expect(result.ok).to.equal(false);
  const failure = (result as unknown as { failure: { kind: string; message: string } }).failure;
  expect(failure.kind).to.equal('forbidden');
  if (typeof message === 'string') expect(failure.message).to.equal(message);
  else if (message) expect(failure.message).to.match(message);
  expect(w.accounts.runs('Deposit') + w.accounts.runs('Withdraw') + w.accounts.runs('Explode')).to.equal(0);
  expect(w.accounts.balances.size).to.equal(0);
  expect(await w.outbox.pending()).to.equal(0);
  await w.settled();
  expect(w.bus.published).to.have.length(0);
  const records = await w.audit.list();
  expect(records.map((r) => r.outcome)).to.deep.equal(['forbidden']);
  return records[0]!;
}

describe('policy()', () => {
  it('should deny a command without a rule (deny by default), writing only one forbidden audit row', async () => {
    const w = setup([everyone(Withdraw)]);
    const result = await w.mediator.send(Deposit.from({ account: 'a', amount: 5 }), alice);
    const record = await expectDenied(w, result, /No policy rule for Deposit \(deny by default\)/);
    expect(record).to.include({ actor: 'alice', type: 'Deposit', outcome: 'forbidden' });
  });

  it('should deny every request type when no rules are given', async () => {
    const w = setup([]);
    for (const request of [
      Deposit.from({ account: 'a', amount: 5 }),
      Withdraw.from({ account: 'a', amount: 5 }),
      Explode.from({ account: 'a' }),
    ]) {
      const result = await w.mediator.send(request, alice);
      expect(!result.ok && result.failure.kind).to.equal('forbidden');
    }
    // Queries skip audit but not policy.
    const query = await w.mediator.send(GetBalance.from({ account: 'a' }), alice);
    expect(!query.ok && query.failure.kind).to.equal('forbidden');
    expect((await w.audit.list()).map((r) => r.outcome)).to.deep.equal(['forbidden', 'forbidden', 'forbidden']);
    expect(w.accounts.runs('Explode')).to.equal(0);
  });

  it('should allow a request type made public with everyone(), even anonymously', async () => {
    const w = setup([everyone(Deposit)]);
    expect(await w.mediator.send(Deposit.from({ account: 'a', amount: 5 }))).to.deep.equal({
      ok: true,
      value: { balance: 5 },
    });
    expect(w.accounts.runs('Deposit')).to.equal(1);
    const records = await w.audit.list();
    expect(records.map((r) => [r.outcome, r.actor])).to.deep.equal([['ok', null]]);
  });

  it('should let the unit of work answer a rule that lost the database: unavailable, nothing stored under the key', async () => {
    let down = true;
    const lost = Object.assign(new Error('Connection terminated unexpectedly'), { code: 'ECONNRESET' });
    const w = setup([
      rule(Deposit, () => {
        if (down) throw lost;
        return true;
      }),
    ]);
    // The memory store never loses its connection: teach this one to recognise the error, as the knex one does.
    const memory = w.uow;
    Object.defineProperty(memory, 'isUnavailable', { value: (error: unknown) => error === lost });
    const key = { ...alice, idempotencyKey: 'blip-1' };
    const first = await w.mediator.send(Deposit.from({ account: 'a', amount: 1 }), key);
    expect(first.ok).to.equal(false);
    expect(!first.ok && first.failure.kind).to.equal('unavailable');
    down = false;
    const retried = await w.mediator.send(Deposit.from({ account: 'a', amount: 1 }), key);
    expect(retried, 'the retry runs: no denial was stored under the key').to.deep.include({ ok: true });
    expect(retried).not.to.have.property('replayed');
    expect(w.accounts.runs('Deposit')).to.equal(1);
  });

  describe('denials', () => {
    const denials: Array<[string, PolicyRule['check'], string | RegExp]> = [
      ['false', () => false, 'alice may not Deposit'],
      ['{ allow: false }', () => ({ allow: false }), 'alice may not Deposit'],
      [
        '{ allow: false, reason }',
        () => ({ allow: false, reason: 'Deposits are frozen for audit' }),
        'Deposits are frozen for audit',
      ],
      ['a Promise of false', async () => false, 'alice may not Deposit'],
      [
        'a Promise of { allow: false, reason }',
        async () => ({ allow: false, reason: 'Not on weekends' }),
        'Not on weekends',
      ],
      ['a truthy value that is not true', () => 'yes' as unknown as Decision, 'alice may not Deposit'],
      ['{ allow: "true" } (not the boolean)', () => ({ allow: 'true' as unknown as boolean }), 'alice may not Deposit'],
      ['undefined (a rule that forgot to return)', () => undefined as unknown as Decision, 'alice may not Deposit'],
      [
        'a synchronous throw',
        () => {
          throw new Error('rules config missing');
        },
        'Policy for Deposit failed, so it denies',
      ],
      [
        'a rejected Promise',
        async () => {
          throw new Error('policy service down');
        },
        'Policy for Deposit failed, so it denies',
      ],
    ];
    for (const [name, check, message] of denials) {
      it(`should deny when the rule returns ${name}, audited exactly once`, async () => {
        const w = setup([rule(Deposit, check)]);
        const result = await w.mediator.send(Deposit.from({ account: 'a', amount: 5 }), {
          ...alice,
          idempotencyKey: 'deny-1',
        });
        await expectDenied(w, result, message);
      });
    }

    it('should not leak the thrown error text of a failing rule', async () => {
      const w = setup([
        rule(Deposit, () => {
          throw new Error('db password=hunter2');
        }),
      ]);
      const result = await w.mediator.send(Deposit.from({ account: 'a', amount: 5 }), alice);
      const record = await expectDenied(w, result);
      expect(JSON.stringify([result, record])).not.to.contain('hunter2');
    });
  });

  it('should allow { allow: true } and true', async () => {
    const w = setup([rule(Deposit, () => ({ allow: true })), rule(Withdraw, async () => true)]);
    expect(await w.mediator.send(Deposit.from({ account: 'a', amount: 5 }), alice)).to.deep.equal({
      ok: true,
      value: { balance: 5 },
    });
    expect(await w.mediator.send(Withdraw.from({ account: 'a', amount: 2 }), alice)).to.deep.equal({
      ok: true,
      value: { balance: 3 },
    });
  });

  it('should decide on the actor and roles in the metadata', async () => {
    const w = setup([rule(Deposit, (ctx) => ctx.meta.actor?.roles?.includes('clerk') === true)]);
    expect((await w.mediator.send(Deposit.from({ account: 'a', amount: 5 }), alice)).ok).to.equal(true);
    const bob = await w.mediator.send(Deposit.from({ account: 'a', amount: 5 }), { actor: { id: 'bob' } });
    expect(!bob.ok && bob.failure).to.deep.equal({ kind: 'forbidden', message: 'bob may not Deposit' });
    const anonymous = await w.mediator.send(Deposit.from({ account: 'a', amount: 5 }));
    expect(!anonymous.ok && anonymous.failure).to.deep.equal({
      kind: 'forbidden',
      message: 'Anonymous may not Deposit',
    });
    expect(w.accounts.runs('Deposit')).to.equal(1);
    expect((await w.audit.list()).map((r) => [r.outcome, r.actor])).to.deep.equal([
      ['ok', 'alice'],
      ['forbidden', 'bob'],
      ['forbidden', null],
    ]);
  });

  it('should decide on state loaded with ctx.load(), shared with the handler (loaded once)', async () => {
    const loads: number[] = [];
    const cap = rule(Deposit, async (ctx: Context<Deposit, number>) => {
      const balance = await ctx.load();
      const again = await ctx.load(); // memoized: the same state, not a second read
      loads.push(balance, again);
      return balance < 100 || { allow: false, reason: `Account ${ctx.request.account} is at its cap (${balance})` };
    });
    const w = setup([cap]);
    expect(await w.mediator.send(Deposit.from({ account: 'a', amount: 60 }), alice)).to.deep.equal({
      ok: true,
      value: { balance: 60 },
    });
    expect(await w.mediator.send(Deposit.from({ account: 'a', amount: 60 }), alice)).to.deep.equal({
      ok: true,
      value: { balance: 120 },
    });
    const denied = await w.mediator.send(Deposit.from({ account: 'a', amount: 60 }), alice);
    expect(!denied.ok && denied.failure).to.deep.equal({ kind: 'forbidden', message: 'Account a is at its cap (120)' });
    expect(loads).to.deep.equal([0, 0, 60, 60, 120, 120]);
    expect(w.accounts.runs('Deposit')).to.equal(2);
    expect(w.accounts.balances.get('a')).to.equal(120);
    expect((await w.audit.list()).map((r) => r.outcome)).to.deep.equal(['ok', 'ok', 'forbidden']);
  });

  it('should judge state read inside the transaction: of two concurrent capped deposits only one passes', async () => {
    // Each deposit alone passes "balance + amount <= 100"; together they would not.
    const w = setup([
      rule(Deposit, async (ctx: Context<Deposit, number>) => (await ctx.load()) + ctx.request.amount <= 100),
    ]);
    const results = await Promise.all([
      w.mediator.send(Deposit.from({ account: 'a', amount: 60 }), alice),
      w.mediator.send(Deposit.from({ account: 'a', amount: 60 }), alice),
    ]);
    expect(results.map((r) => (r.ok ? 'ok' : r.failure.kind)).sort()).to.deep.equal(['forbidden', 'ok']);
    expect(w.accounts.balances.get('a')).to.equal(60);
    expect(w.accounts.runs('Deposit')).to.equal(1);
  });

  it('should accept a Policy engine object ({ authorize(ctx) })', async () => {
    const asked: string[] = [];
    const engine: Policy = {
      async authorize(ctx) {
        asked.push(`${ctx.meta.actor?.id ?? '-'}:${ctx.type}`);
        if (ctx.type === 'Explode') throw new Error('engine crashed');
        return ctx.meta.actor?.roles?.includes('clerk') ? true : { allow: false, reason: 'clerks only' };
      },
    };
    const w = setup(engine);
    expect(await w.mediator.send(Deposit.from({ account: 'a', amount: 5 }), alice)).to.deep.equal({
      ok: true,
      value: { balance: 5 },
    });
    const bob = await w.mediator.send(Deposit.from({ account: 'a', amount: 5 }), { actor: { id: 'bob' } });
    expect(!bob.ok && bob.failure).to.deep.equal({ kind: 'forbidden', message: 'clerks only' });
    const crashed = await w.mediator.send(Explode.from({ account: 'a' }), alice);
    expect(!crashed.ok && crashed.failure.kind).to.equal('forbidden');
    expect(asked).to.deep.equal(['alice:Deposit', 'bob:Deposit', 'alice:Explode']);
    expect(w.accounts.runs('Deposit')).to.equal(1);
    expect(w.accounts.runs('Explode')).to.equal(0);
    expect((await w.audit.list()).map((r) => r.outcome)).to.deep.equal(['ok', 'forbidden', 'forbidden']);
  });

  it('should audit every denial exactly once across many sends', async () => {
    const w = setup([rule(Deposit, (ctx: Context<Deposit>) => ctx.request.amount % 2 === 0)]);
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => w.mediator.send(Deposit.from({ account: 'a', amount: i + 1 }), alice)),
    );
    expect(results.filter((r) => !r.ok)).to.have.length(10);
    const records = await w.audit.list();
    expect(records.filter((r) => r.outcome === 'forbidden')).to.have.length(10);
    expect(records.filter((r) => r.outcome === 'ok')).to.have.length(10);
    expect(
      records
        .filter((r) => r.outcome === 'forbidden')
        .map((r) => (r.payload as { amount: number }).amount)
        .sort((a, b) => a - b),
    ).to.deep.equal([1, 3, 5, 7, 9, 11, 13, 15, 17, 19]);
    expect(w.accounts.runs('Deposit')).to.equal(10);
  });
});
