// unitOfWork(): bounded retries that re-run load and checks, unavailable for a store out of reach (RELIABILITY 17),
// and concurrent sends that never overdraw.
import { withRules, type Context } from '../../lib/core/index.js';
import { Withdraw, alice, expect } from '../support/helpers.js';
import {
  ConnectionLost,
  CountedDeposit,
  FaultyUnitOfWork,
  SerializationFailure,
  counted,
  setup,
  wireWith,
} from './unit-of-work-fixtures.js';

describe('unitOfWork()', () => {
  describe('retries', () => {
    it('should retry a retryable failure, re-running load and policy, with one effect', async () => {
      const w = wireWith({
        uow: (memory) => new FaultyUnitOfWork(memory, 2, () => new SerializationFailure('could not serialize access')),
        maxAttempts: 3,
      });
      const result = await w.mediator.send(CountedDeposit.from({ account: 'a', amount: 10 }), {
        ...alice,
        idempotencyKey: 'retry-1',
      });
      expect(result).to.deep.equal({ ok: true, value: { balance: 10 } });
      expect((w.uow as FaultyUnitOfWork).attempts).to.equal(3);
      expect(counted.loads).to.equal(3);
      expect(counted.policy).to.equal(3);
      expect(w.accounts.runs('CountedDeposit')).to.equal(3);
      expect(w.accounts.balances.get('a')).to.equal(10); // one effect
      expect(counted.afterCommit).to.equal(1); // hooks of failed attempts were forgotten
      await w.settled();
      expect(w.bus.published).to.have.length(1);
      expect((await w.audit.list()).map((r) => r.outcome)).to.deep.equal(['ok']);
      // The idempotency record committed once, with the business write.
      expect(
        await w.mediator.send(CountedDeposit.from({ account: 'a', amount: 10 }), {
          ...alice,
          idempotencyKey: 'retry-1',
        }),
      ).to.deep.equal({ ok: true, value: { balance: 10 }, replayed: true });
    });

    it('should keep the hooks a middleware outside the unit of work registered, across retries', async () => {
      let outerCommits = 0;
      const outer = withRules(async function outer(ctx: Context, next: () => Promise<any>) {
        ctx.afterCommit(() => {
          outerCommits++;
        });
        return next();
      }, {});
      const w = wireWith({
        uow: (memory) => new FaultyUnitOfWork(memory, 2, () => new SerializationFailure('could not serialize access')),
        maxAttempts: 3,
        outer: [outer],
      });
      const result = await w.mediator.send(CountedDeposit.from({ account: 'a', amount: 10 }), alice);
      expect(result).to.deep.equal({ ok: true, value: { balance: 10 } });
      expect((w.uow as FaultyUnitOfWork).attempts).to.equal(3);
      expect(outerCommits, 'registered once, before the retried attempts: runs once').to.equal(1);
      expect(counted.afterCommit, 'the handler registers one per attempt: only the last survives').to.equal(1);
    });

    it('should stop after maxAttempts and reject with the last error, leaving nothing behind', async () => {
      const w = wireWith({
        uow: (memory) =>
          new FaultyUnitOfWork(memory, Infinity, () => new SerializationFailure('could not serialize access')),
        maxAttempts: 4,
      });
      await expect(
        w.mediator.send(CountedDeposit.from({ account: 'a', amount: 10 }), { ...alice, idempotencyKey: 'retry-2' }),
      ).to.be.rejectedWith(SerializationFailure, 'could not serialize access');
      expect((w.uow as FaultyUnitOfWork).attempts).to.equal(4);
      expect(counted.loads).to.equal(4);
      expect(counted.policy).to.equal(4);
      expect(w.accounts.balances.get('a')).to.equal(undefined);
      expect(counted.afterCommit).to.equal(0);
      expect(await w.outbox.pending()).to.equal(0);
      expect((await w.audit.list()).map((r) => r.outcome)).to.deep.equal(['error']);
      // The claim was released: once the database recovers, the same key runs.
      (w.uow as FaultyUnitOfWork).failures = 0;
      expect(
        await w.mediator.send(CountedDeposit.from({ account: 'a', amount: 10 }), {
          ...alice,
          idempotencyKey: 'retry-2',
        }),
      ).to.deep.equal({ ok: true, value: { balance: 10 } });
    });

    it('should use 3 attempts by default', async () => {
      const w = wireWith({
        uow: (memory) => new FaultyUnitOfWork(memory, Infinity, () => new SerializationFailure('deadlock detected')),
      });
      await expect(w.mediator.send(CountedDeposit.from({ account: 'a', amount: 1 }), alice)).to.be.rejectedWith(
        SerializationFailure,
      );
      expect((w.uow as FaultyUnitOfWork).attempts).to.equal(3);
    });

    it('should not retry an error the unit of work does not call retryable', async () => {
      const w = wireWith({ uow: (memory) => new FaultyUnitOfWork(memory, 1, () => new Error('constraint violated')) });
      await expect(w.mediator.send(CountedDeposit.from({ account: 'a', amount: 1 }), alice)).to.be.rejectedWith(
        Error,
        'constraint violated',
      );
      expect((w.uow as FaultyUnitOfWork).attempts).to.equal(1);
      expect(counted.loads).to.equal(1);
    });

    it('should resolve to unavailable (not reject, not retry) when the store is unreachable', async () => {
      const w = wireWith({
        uow: (memory) => new FaultyUnitOfWork(memory, 1, () => new ConnectionLost('terminating connection')),
      });
      const result = await w.mediator.send(CountedDeposit.from({ account: 'a', amount: 10 }), {
        ...alice,
        idempotencyKey: 'down-1',
      });
      expect(result.ok).to.equal(false);
      expect(!result.ok && result.failure.kind).to.equal('unavailable');
      expect((w.uow as FaultyUnitOfWork).attempts).to.equal(1);
      expect(w.accounts.balances.get('a')).to.equal(undefined);
      expect(await w.outbox.pending()).to.equal(0);
      expect((await w.audit.list()).map((r) => r.outcome)).to.deep.equal(['unavailable']);
      // Not stored under the key: the retry after recovery runs.
      expect(
        await w.mediator.send(CountedDeposit.from({ account: 'a', amount: 10 }), {
          ...alice,
          idempotencyKey: 'down-1',
        }),
      ).to.deep.equal({ ok: true, value: { balance: 10 } });
    });
  });

  describe('concurrency', () => {
    it('should let only one of two concurrent withdrawals commit when both together would overdraw', async () => {
      const w = setup();
      w.accounts.balances.set('a', 100);
      const results = await Promise.all([
        w.mediator.send(Withdraw.from({ account: 'a', amount: 60 }), alice),
        w.mediator.send(Withdraw.from({ account: 'a', amount: 60 }), alice),
      ]);
      expect(
        results.map((r) => (r.ok ? 'ok' : r.failure.kind === 'domain' ? r.failure.code : r.failure.kind)).sort(),
      ).to.deep.equal(['insufficient_funds', 'ok']);
      expect(w.accounts.balances.get('a')).to.equal(40);
    });

    it('should never overdraw under 20 concurrent withdrawals', async () => {
      const w = setup();
      w.accounts.balances.set('a', 100);
      const seen: number[] = [];
      const results = await Promise.all(
        Array.from({ length: 20 }, () => w.mediator.send(Withdraw.from({ account: 'a', amount: 30 }), alice)),
      );
      for (const r of results) if (r.ok) seen.push(r.value.balance);
      expect(seen).to.deep.equal([70, 40, 10]);
      expect(
        results.filter((r) => !r.ok && r.failure.kind === 'domain' && r.failure.code === 'insufficient_funds'),
      ).to.have.length(17);
      expect(w.accounts.balances.get('a')).to.equal(10);
    });
  });
});
