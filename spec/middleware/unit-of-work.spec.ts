// unitOfWork(): one transaction per send, rolled back on failure or throw; commit hooks in order; nested sends join
// as savepoints and their events leave at the outermost commit (DESIGN "Guarantees" 2 and 6; RELIABILITY 6).
import { audit, policy, publish, unitOfWork, validation } from '../../middleware/index.js';
import { Explode, alice, expect, recorder, wire } from '../support/helpers.js';
import {
  HANDLERS,
  Hooked,
  Outer,
  Transfer,
  probe,
  publicRules,
  reset,
  setup,
  wireWith,
} from './unit-of-work-fixtures.js';

describe('unitOfWork()', () => {
  describe('rollback', () => {
    for (const outcome of ['fail', 'throw'] as const) {
      it(`should roll back every map write and every staged event when the handler ${outcome}s`, async () => {
        const w = setup();
        w.accounts.balances.set('a', 100);
        w.accounts.balances.set('b', 0);
        const send = w.mediator.send(Transfer.from({ from: 'a', to: 'b', amount: 30, mode: outcome }), alice);
        if (outcome === 'throw') await expect(send).to.be.rejectedWith(Error, 'transfer exploded');
        else
          expect(await send).to.deep.equal({
            ok: false,
            failure: { kind: 'domain', code: 'refused', message: 'Domain rule failed: refused' },
          });
        expect([w.accounts.balances.get('a'), w.accounts.balances.get('b')]).to.deep.equal([100, 0]);
        expect(w.accounts.runs('Transfer')).to.equal(1);
        expect(await w.outbox.pending()).to.equal(0);
        await w.settled();
        expect(w.bus.published).to.have.length(0);
        expect((await w.audit.list()).map((r) => r.outcome)).to.deep.equal([outcome === 'throw' ? 'error' : 'domain']);
      });
    }

    it('should commit every write and every event of a successful handler', async () => {
      const w = setup();
      w.accounts.balances.set('a', 100);
      expect(await w.mediator.send(Transfer.from({ from: 'a', to: 'b', amount: 30, mode: 'ok' }), alice)).to.deep.equal(
        { ok: true, value: { from: 70, to: 30 } },
      );
      expect([w.accounts.balances.get('a'), w.accounts.balances.get('b')]).to.deep.equal([70, 30]);
      await w.settled();
      expect(w.bus.published.map((m) => (m.payload as { delta: number }).delta)).to.deep.equal([-30, 30]);
    });

    it('should leave the store untouched by a thrown handler (Explode)', async () => {
      const w = setup();
      await expect(w.mediator.send(Explode.from({ account: 'a' }), alice)).to.be.rejectedWith(Error, 'boom');
      expect(w.accounts.balances.get('a')).to.equal(undefined);
      await w.settled();
      expect(w.bus.published).to.have.length(0);
    });
  });

  describe('hooks', () => {
    function hookStack() {
      reset();
      const rec = recorder();
      const w = wire({
        handlers: HANDLERS,
        middleware: [
          validation(),
          rec.step('outer'),
          unitOfWork(),
          audit(),
          policy(publicRules()),
          rec.step('inner'),
          publish(),
        ],
      });
      probe.hookLog = rec.log; // the handler logs its hooks into the recorder's log
      return { w, log: rec.log };
    }

    it('should run beforeCommit inside the transaction and afterCommit after it, on success', async () => {
      const { w, log } = hookStack();
      expect(await w.mediator.send(Hooked.from({ mode: 'ok' }), alice)).to.deep.equal({ ok: true, value: undefined });
      expect(log).to.deep.equal([
        'outer before',
        'inner before',
        'handle',
        'inner after',
        'beforeCommit in tx ok',
        'afterCommit no tx ok',
        'outer after',
      ]);
    });

    it('should run only afterRollback (outside the transaction, with the failure) on a failure', async () => {
      const { w, log } = hookStack();
      const result = await w.mediator.send(Hooked.from({ mode: 'fail' }), alice);
      expect(!result.ok && result.failure.kind).to.equal('domain');
      expect(log).to.deep.equal([
        'outer before',
        'inner before',
        'handle',
        'inner after',
        'afterRollback no tx domain',
        'outer after',
      ]);
    });

    it('should run only afterRollback (with no result) when the handler throws, then reject', async () => {
      const { w, log } = hookStack();
      await expect(w.mediator.send(Hooked.from({ mode: 'throw' }), alice)).to.be.rejectedWith(Error, 'hooked exploded');
      expect(log).to.deep.equal(['outer before', 'inner before', 'handle', 'afterRollback no tx undefined']);
    });
  });

  describe('nested ctx.send', () => {
    it('should roll back only the nested writes and events when the nested send fails, and commit the outer', async () => {
      const w = setup();
      const result = await w.mediator.send(
        Outer.from({ account: 'outer', nested: 'transfer-fail', then: 'ok' }),
        alice,
      );
      expect(result).to.deep.equal({ ok: true, value: { nested: 'domain' } });
      expect(w.accounts.balances.get('outer')).to.equal(1);
      expect([w.accounts.balances.get('n1'), w.accounts.balances.get('n2')]).to.deep.equal([undefined, undefined]);
      expect(w.accounts.runs('Transfer')).to.equal(1);
      await w.settled();
      expect(w.bus.published.map((m) => [m.type, (m.payload as { account: string }).account])).to.deep.equal([
        ['account.deposited', 'outer'],
      ]);
    });

    it('should roll back only the nested writes when the nested send throws and the outer catches it', async () => {
      const w = setup();
      const result = await w.mediator.send(
        Outer.from({ account: 'outer', nested: 'transfer-throw', then: 'ok' }),
        alice,
      );
      expect(result).to.deep.equal({ ok: true, value: { nested: 'threw transfer exploded' } });
      expect(w.accounts.balances.get('outer')).to.equal(1);
      expect(w.accounts.balances.has('n1') || w.accounts.balances.has('n2')).to.equal(false);
      await w.settled();
      expect(w.bus.published).to.have.length(1);
    });

    it('should roll back a successful nested send with its outer send', async () => {
      const w = setup();
      const result = await w.mediator.send(Outer.from({ account: 'outer', nested: 'deposit', then: 'fail' }), alice);
      expect(!result.ok && result.failure).to.include({ kind: 'domain', code: 'outer_refused' });
      expect(w.accounts.runs('Deposit')).to.equal(1);
      expect(w.accounts.balances.has('nested') || w.accounts.balances.has('outer')).to.equal(false);
      expect(await w.outbox.pending()).to.equal(0);
      await w.settled();
      expect(w.bus.published).to.have.length(0);
    });

    it('should wake the relay for nested events only after the outermost commit', async () => {
      let wakes = 0;
      const w = wireWith({
        relay: (memory) => ({
          wake() {
            wakes++;
            memory.wake();
          },
          drain: (ms) => memory.drain(ms),
        }),
      });
      const during: number[] = [];
      probe.midFlight = async () => {
        during.push(wakes, w.bus.published.length);
      };
      const result = await w.mediator.send(Outer.from({ account: 'outer', nested: 'deposit', then: 'ok' }), alice);
      expect(result).to.deep.equal({ ok: true, value: { nested: 'ok' } });
      expect(during).to.deep.equal([0, 0]);
      expect(wakes).to.be.greaterThan(0);
      await w.settled();
      expect(w.bus.published.map((m) => (m as { payload: { account: string } }).payload.account).sort()).to.deep.equal([
        'nested',
        'outer',
      ]);
    });

    // Regression: the memory outbox used to show rows of a still-open transaction to a relay pass.
    it('should not let a relay pass publish nested events before the outermost commit', async () => {
      const w = setup();
      const during: number[] = [];
      probe.midFlight = async () => {
        await w.relay.drain(); // a relay pass that happens to run now (woken by another commit, or after a backoff)
        during.push(w.bus.published.length, await w.outbox.pending());
      };
      const result = await w.mediator.send(Outer.from({ account: 'outer', nested: 'deposit', then: 'fail' }), alice);
      expect(!result.ok && result.failure.kind).to.equal('domain');
      expect(during).to.deep.equal([0, 0]);
      await w.settled();
      expect(w.bus.published).to.have.length(0);
    });
  });
});
