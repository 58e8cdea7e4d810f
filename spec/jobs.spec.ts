// Jobs: ctx.enqueue → outbox → bus → messageDispatcher → mediator.send, once per message id.
import { injectable } from 'inversify';
import * as v from 'valibot';
import { Command, UseCaseError, fail, handles, messageDispatcher, ok, reapEvery, typeOf, type Context, type Handler } from '../lib/index.js';
import { everyone, recommendedStack } from '../middleware/index.js';
import { ACCOUNT_HANDLERS, Deposit, alice, expect, wire } from './helpers.js';

class OpenAccount extends Command(v.object({ account: v.string() }))<{ queued: boolean }> {}
@handles(OpenAccount) @injectable()
class OpenAccountHandler implements Handler<OpenAccount> {
  handle(cmd: OpenAccount, ctx: Context<OpenAccount>) {
    ctx.enqueue(new Deposit({ account: cmd.account, amount: 100 })); // welcome bonus, as a job after commit
    return ok({ queued: true });
  }
}

describe('messageDispatcher()', () => {
  const setup = () => {
    const w = wire({ middleware: recommendedStack({ rules: [everyone(OpenAccount), everyone(Deposit)] }), handlers: [...ACCOUNT_HANDLERS, OpenAccountHandler] });
    const dispatch = messageDispatcher(w.mediator, [Deposit]);
    const results: unknown[] = [];
    w.bus.subscribe(typeOf(Deposit), async (m) => results.push(await dispatch(m)));
    return { ...w, dispatch, results };
  };

  it('should run an enqueued job after commit, through the pipeline, with the sender as actor', async () => {
    const w = setup();
    await w.mediator.send(OpenAccount.from({ account: 'j1' }), alice);
    await w.settled();
    expect(w.accounts.balances.get('j1')).to.equal(100);
    const job = w.bus.published.find((m) => m.kind === 'job')!;
    expect(job).to.include({ type: 'Deposit' });
    expect(job.headers).to.include({ actor: 'alice' });
    const audited = await w.audit.list({ order: 'desc', limit: 1 });
    expect(audited[0]).to.include({ type: 'Deposit', actor: 'alice', outcome: 'ok' });
  });

  it('should take effect once when the same message is delivered again (dedupe by message id)', async () => {
    const w = setup();
    await w.mediator.send(OpenAccount.from({ account: 'j2' }), alice);
    await w.settled();
    const job = w.bus.published.find((m) => m.kind === 'job')!;
    const again = await w.dispatch(job);
    expect(again).to.deep.include({ ok: true, replayed: true });
    expect(w.accounts.balances.get('j2')).to.equal(100);
    expect(w.accounts.runs('Deposit')).to.equal(1);
  });

  it('should not run a job whose sending transaction rolled back', async () => {
    class OpenThenRefuse extends Command(v.object({ account: v.string() }))<void, 'refused'> {}
    @handles(OpenThenRefuse) @injectable()
    class OpenThenRefuseHandler implements Handler<OpenThenRefuse> {
      handle(cmd: OpenThenRefuse, ctx: Context<OpenThenRefuse>) {
        ctx.enqueue(new Deposit({ account: cmd.account, amount: 100 }));
        return fail('refused');
      }
    }
    const w = wire({ middleware: recommendedStack({ rules: [everyone(OpenThenRefuse), everyone(Deposit)] }), handlers: [...ACCOUNT_HANDLERS, OpenThenRefuseHandler] });
    w.bus.subscribe(typeOf(Deposit), messageDispatcher(w.mediator, [Deposit]));
    expect(await w.mediator.send(OpenThenRefuse.from({ account: 'j3' }), alice)).to.have.nested.property('failure.code', 'refused');
    await w.settled();
    expect(w.bus.published).to.have.length(0);
    expect(w.accounts.runs('Deposit')).to.equal(0);
  });

  it('should reject a message whose type it was not given', async () => {
    const w = setup();
    await w.mediator.send(OpenAccount.from({ account: 'j4' }), alice);
    await w.settled();
    await expect(w.dispatch({ ...w.bus.published[0]!, type: 'Nope' })).to.be.rejectedWith(UseCaseError, /No request type "Nope" given to messageDispatcher/);
  });
});

describe('reapEvery()', () => {
  it('should call reap on an interval until stopped', async () => {
    let calls = 0;
    let reached!: () => void;
    const twice = new Promise<void>((resolve) => { reached = resolve; });
    const stop = reapEvery({ reap: async () => { if (++calls === 2) reached(); return 0; } }, 1);
    await twice;
    stop();
    const stoppedAt = calls;
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(calls).to.equal(stoppedAt);
  });
});
