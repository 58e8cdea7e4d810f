// The usecasecore CLI's processes commands on Postgres + RabbitMQ, beside workers that run the processes: list and
// show read the store; retry and cancel write a job the workers carry out (the CLI has none of the processes' code).
import { randomUUID } from 'node:crypto';
import type { ProcessRecord } from '../../../lib/processes/index.js';
import { postgres } from '../../support/db.js';
import { expect } from '../../support/helpers.js';
import { worldOn, type World } from '../../lib/processes/world.js';
import { cli } from './support.js';

describe('usecasecore processes (Postgres + RabbitMQ, with workers)', function () {
  this.timeout(60_000);
  let w: World;
  let failed: ProcessRecord, running: ProcessRecord;
  /** `usecasecore processes …` on the world's schema. */
  const processes = (...args: string[]) =>
    cli(['processes', ...args, '--schema', w.schema!], { DATABASE_URL: process.env.DATABASE_URL });

  before(async function () {
    const world = await worldOn('Postgres + RabbitMQ');
    if (!world) return this.skip();
    w = world;
    failed = (await w.checkout('4242', `no-ship-no-refund-${randomUUID()}`)).process; // its refund keeps failing
    running = (await w.checkout('pending')).process; // waits for the provider's word
    expect([failed.state, running.state]).to.deep.equal(['failed', 'running']);
  });
  after(() => w?.close());

  it('should list processes with the step each is at, exit 1 while one failed, and filter by state', async () => {
    const all = await processes('list');
    expect(all.code, all.stderr).to.equal(1);
    expect(all.stdout.split('\n')[0]).to.match(/^id +type +tenant +state +step +updated$/);
    expect(all.stdout) // the world's clock stands still: both started at the same time, in either order
      .to.match(new RegExp(`^${running.processId} +Checkout +acme +running +2 wait \\S+ waiting `, 'm'))
      .and.match(new RegExp(`^${failed.processId} +Checkout +acme +failed +`, 'm'));
    expect(all.stdout).to.include('1 failed: usecasecore processes show <id>');

    const json = await processes('list', '--state', 'running', '--json');
    expect(json.code).to.equal(0);
    expect(JSON.parse(json.stdout).map((p: ProcessRecord) => p.processId)).to.deep.equal([running.processId]);
    const bad = await processes('list', '--state', 'stuck');
    expect([bad.code, bad.stderr]).to.satisfy(
      ([code, err]: [number, string]) => code === 2 && /--state stuck/.test(err),
    );
  });

  it('should show a process with its steps, and the retry to run when it failed (exit 1)', async () => {
    const shown = await processes('show', failed.processId);
    expect(shown.code).to.equal(1);
    expect(shown.stdout)
      .to.match(new RegExp(`^Checkout ${failed.processId}: failed \\(tenant acme, started by ann\\)$`, 'm'))
      .and.match(/^failure: .*compensating Charge failed/m)
      .and.match(/^# +step +state +attempts +compensations +failure$/m)
      .and.match(/^0 +Reserve +completed +1 +0$/m)
      .and.include(`usecasecore processes retry ${failed.processId}`);
    const json = await processes('show', running.processId, '--json');
    expect(json.code).to.equal(0);
    expect(JSON.parse(json.stdout)).to.deep.include({ processId: running.processId, state: 'running' });
    const unknown = await processes('show', randomUUID());
    expect(unknown.code).to.equal(1);
    expect(unknown.stdout).to.match(/^No process .* — check the id/);
  });

  it('should have a worker retry a process that failed compensating, and refuse one that did not fail', async () => {
    const retried = await processes('retry', failed.processId, '--json');
    expect(retried.code, retried.stderr).to.equal(0);
    expect(JSON.parse(retried.stdout)).to.deep.equal([{ processId: failed.processId, ok: true }]);
    await w.settled();
    const undone = await w.get(failed.processId);
    expect(undone.state, 'the worker compensated it again: the refund now goes through').to.equal('compensated');
    expect(await w.shop.count(`release:${(failed.input as { orderId: string }).orderId}`)).to.equal(1);
    const db = (await postgres())!;
    const audited = await db(`${w.schema}.ucc_audit`).where({ type: 'RetryProcess' }).select('actor', 'outcome');
    expect(audited, "the operator's retry is audited").to.deep.equal([{ actor: 'usecasecore-cli', outcome: 'ok' }]);

    const again = await processes('retry', failed.processId, running.processId);
    expect(again.code).to.equal(1);
    expect(again.stdout)
      .to.include(`${failed.processId}: Process ${failed.processId} is compensated`)
      .and.include(`${running.processId}: Process ${running.processId} is running`);
  });

  it('should have a worker cancel a running process, undoing what it did, and refuse one that ended', async () => {
    const cancelled = await processes('cancel', running.processId);
    expect(cancelled.code, cancelled.stderr).to.equal(0);
    expect(cancelled.stdout).to.include(`${running.processId}: cancel asked of the workers`);
    await w.settled();
    const undone = await w.get(running.processId);
    expect(undone).to.deep.include({ state: 'compensated' });
    expect(undone.failure).to.deep.include({ kind: 'cancelled' });

    const unknown = randomUUID();
    const again = await processes('cancel', running.processId, unknown);
    expect(again.code).to.equal(1);
    expect(again.stdout)
      .to.include(`${running.processId}: Process ${running.processId} is compensated`)
      .and.include(`${unknown}: no such process`);
  });
});
