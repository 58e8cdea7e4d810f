// Business processes on memory, PGlite and Postgres + RabbitMQ: steps each in a transaction of its own,
// compensation in reverse, waits for an event or a time, deadlines, retries, cancellation, and each effect once.
import 'reflect-metadata';
import { randomUUID } from 'node:crypto';
import { createMediator, unwrap } from '../../../lib/core/index.js';
import {
  CancelProcess,
  GetProcess,
  ProcessStep,
  RetryProcess,
  process,
  processes,
  step,
  type ProcessRecord,
} from '../../../lib/processes/index.js';
import { everyone, recommendedStack } from '../../../middleware/index.js';
import { expect } from '../../support/helpers.js';
import { Charge, Checkout, Release, Reserve, Settle, Ship } from './checkout.js';
import { Deadlined, Doomed, Later, Note, ann, failing, latch, onEveryBackend, unreachable } from './world.js';

const states = (p: ProcessRecord) => p.steps.map((s) => s.state);

onEveryBackend('processes', (open) => {
  it('should run the steps one after another, each in its own transaction, to completed', async () => {
    const w = await open();
    const { processId, orderId, process: done } = await w.checkout('4242');
    expect(done).to.deep.include({ type: 'Checkout', tenant: 'acme', state: 'completed' });
    expect(done.actor).to.deep.equal(ann.actor);
    expect(states(done)).to.deep.equal(['completed', 'completed', 'completed', 'completed']);
    expect(done.steps.map((s) => s.name)).to.deep.equal(['Reserve', 'Charge', 'wait PaymentConfirmed', 'Ship']);
    expect(done.steps[3]!.result).to.deep.equal({ shipped: orderId });
    for (const effect of ['reserve', 'charge', 'ship'])
      expect(await w.shop.count(`${effect}:${orderId}`), effect).to.equal(1);
    expect(await w.shop.count(`cancel:${orderId}`)).to.equal(0);
    expect(w.shop.keys).to.deep.equal([`process:${processId}:0:run`, `process:${processId}:1:run`]);
    expect(w.mediator.describe(Checkout).steps).to.deep.equal(done.steps.map((s) => s.name));
  });

  it('should undo the completed steps in reverse when a step fails, then send onFailure once: compensated', async () => {
    const w = await open();
    const { orderId, process: undone } = await w.checkout('decline');
    expect(undone.state).to.equal('compensated');
    expect(undone.failure).to.deep.include({ kind: 'domain', code: 'declined' });
    expect(states(undone)).to.deep.equal(['compensated', 'failed', 'pending', 'pending']);
    expect(undone.steps[0]!.compensations).to.equal(1);
    expect(await w.shop.count(`reserve:${orderId}`), 'the reservation stays committed').to.equal(1);
    expect(await w.shop.count(`release:${orderId}`), 'and is released once').to.equal(1);
    expect(await w.shop.count(`charge:${orderId}`)).to.equal(0);
    expect(await w.shop.count(`refund:${orderId}`), 'a failed charge has nothing to refund').to.equal(0);
    expect(await w.shop.count(`cancel:${orderId}`), 'onFailure').to.equal(1);
  });

  it('should end failed, with the code, when the first step fails and nothing is done to undo', async () => {
    const w = await open();
    const { orderId, process: failed } = await w.checkout('4242', `sold-out-${randomUUID().slice(0, 4)}`);
    expect(failed.state).to.equal('failed');
    expect(failed.failure).to.deep.include({ kind: 'domain', code: 'insufficient_stock' });
    expect(states(failed)).to.deep.equal(['failed', 'pending', 'pending', 'pending']);
    expect(await w.shop.count(`cancel:${orderId}`)).to.equal(1);
  });

  it('should retry a step that fails transiently with the job retry policy, and count its attempts', async () => {
    const w = await open();
    const { orderId, process: done } = await w.checkout('flaky');
    expect(done.state).to.equal('completed');
    expect(w.shop.calls.get(`charge:${orderId}`), 'two 503s, then the charge').to.equal(3);
    expect(await w.shop.count(`charge:${orderId}`), 'one charge committed').to.equal(1);
    expect(done.steps[1]).to.deep.include({ state: 'completed', attempts: 3 });
    const keys = new Set(w.shop.keys.filter((k) => k.endsWith(':1:run')));
    expect(keys.size, 'the same step key on every retry').to.equal(1);
  });

  it('should compensate when a step keeps throwing until its retries run out', async () => {
    const w = await open();
    const { orderId, process: undone } = await w.checkout('broken');
    expect(undone.state).to.equal('compensated');
    expect(undone.failure?.kind).to.equal('dead');
    expect(w.shop.calls.get(`charge:${orderId}`)).to.equal(3);
    expect(await w.shop.count(`release:${orderId}`)).to.equal(1);
  });

  it('should wait for the correlated event holding nothing, and go on when it arrives', async () => {
    const w = await open();
    const { processId, orderId, process: waiting } = await w.checkout('pending');
    expect(waiting.state).to.equal('running');
    expect(states(waiting)).to.deep.equal(['completed', 'completed', 'waiting', 'pending']);
    const otherTenant = { ...ann, tenant: 'globex' };
    await w.mediator.send(new Settle({ chargeId: `ch-${orderId}`, status: 'succeeded' }), otherTenant);
    await w.settled();
    expect(states(await w.get(processId)), "another tenant's event with the same key").to.deep.equal(states(waiting));
    await w.mediator.send(new Settle({ chargeId: `ch-${orderId}`, status: 'succeeded' }), ann);
    await w.settled();
    const done = await w.get(processId);
    expect(done.state).to.equal('completed');
    expect(await w.shop.count(`ship:${orderId}`)).to.equal(1);
  });

  it('should not lose an event that arrives before its wait begins', async () => {
    const w = await open();
    const orderId = `early-${randomUUID().slice(0, 8)}`;
    await w.mediator.send(new Settle({ chargeId: `ch-${orderId}`, status: 'succeeded' }), ann);
    await w.settled();
    const { process: done } = await w.checkout('pending', orderId);
    expect(done.state).to.equal('completed');
  });

  it('should compensate when the event refuses (accept) or does not come in time', async () => {
    const w = await open();
    const refused = await w.checkout('pending');
    await w.mediator.send(new Settle({ chargeId: `ch-${refused.orderId}`, status: 'failed' }), ann);
    await w.settled();
    const afterRefusal = await w.get(refused.processId);
    expect(afterRefusal).to.deep.include({ state: 'compensated' });
    expect(afterRefusal.failure).to.deep.include({ code: 'refused', message: 'the payment failed' });
    const late = await w.checkout('pending');
    w.clock.advance(2_001); // the wait's timeout job is due by the outbox's clock
    await w.settled();
    const timedOut = await w.get(late.processId);
    expect(timedOut.state).to.equal('compensated');
    expect(timedOut.failure).to.deep.include({ kind: 'timeout' });
    expect(await w.shop.count(`refund:${late.orderId}`)).to.equal(1);
    expect(await w.shop.count(`release:${late.orderId}`)).to.equal(1);
    await w.mediator.send(new Settle({ chargeId: `ch-${late.orderId}`, status: 'succeeded' }), ann);
    await w.settled();
    expect((await w.get(late.processId)).state, 'a late event changes nothing').to.equal('compensated');
  });

  it('should sleep until a time holding nothing, and end at its deadline', async () => {
    const w = await open();
    const soon = new Date(w.clock.now() + 500).toISOString();
    const slept = unwrap(await w.mediator.send(new Later({ until: soon }), ann));
    await w.settled();
    expect(states(await w.get(slept.processId))).to.deep.equal(['completed', 'waiting', 'pending']);
    w.clock.advance(500);
    await w.settled();
    expect((await w.get(slept.processId)).state).to.equal('completed');
    const never = unwrap(await w.mediator.send(new Later({ until: '2999-01-01T00:00:00Z' }), ann));
    await w.settled();
    w.clock.advance(1_000);
    await w.settled();
    const ended = await w.get(never.processId);
    expect(ended.state, 'the completed Note has no compensation: nothing to undo').to.equal('compensated');
    expect(ended.failure).to.deep.include({ kind: 'deadline', message: "Later's deadline passed" });
  });

  it('should end a step at its own deadline, counted from when it became due, between its retries', async () => {
    const w = await open({ retry: { attempts: 3, baseMs: 1_500, maxMs: 1_500 } });
    failing.began = latch();
    const { processId } = unwrap(await w.mediator.send(new Deadlined({ until: 'now' }), ann));
    await failing.began.promise; // its first attempt answered 503 and rolled back; the next one is 1.5 s away
    w.clock.advance(5_000);
    await w.settled();
    const ended = await w.get(processId);
    expect(ended.failure).to.deep.include({ kind: 'deadline', message: 'the deadline of Flaky passed' });
    expect(ended.state, 'the completed Note has no compensation: nothing to undo').to.equal('compensated');
    expect(states(ended)).to.deep.equal(['completed', 'failed']);
  });

  it('should refuse to move a process started with other steps than its declaration has now, saying what to do', async () => {
    const w = await open();
    const { processId } = await w.checkout('pending'); // waiting for the payment, at its third step
    const Changed = process('Checkout', [step(Note)]);
    const runtime = processes([Changed]);
    const mediator = createMediator(w.container, {
      handlers: [...runtime.handlers],
      middleware: recommendedStack({ rules: [everyone(CancelProcess), ...runtime.rules] }),
    });
    const refused = await mediator.send(new CancelProcess({ processId }), ann).then(
      () => expect.fail('a changed declaration moved the process'),
      (error: Error) => error,
    );
    expect(refused.message).to.include('declare the new steps under another name (CheckoutV2)');
    expect((await w.get(processId)).state, 'left as it was').to.equal('running');
  });

  it('should answer why when a cancel cannot end the process, and leave it running to end later', async () => {
    const w = await open({ retry: { attempts: 2, baseMs: 1_500, maxMs: 1_500 } });
    failing.began = latch();
    const { processId } = unwrap(await w.mediator.send(new Doomed({ until: 'now' }), ann));
    await failing.began.promise; // its step failed once; the retry is 1.5 s away
    unreachable.down = true; // nothing is done to undo: the cancel ends the process, and its onFailure fails
    const refused = await w.mediator.send(new CancelProcess({ processId }), ann);
    unreachable.down = false;
    expect(refused.ok, 'a cancel that did not happen is not a success').to.equal(false);
    expect(!refused.ok && refused.failure).to.deep.include({ kind: 'unavailable' });
    expect((await w.get(processId)).state, 'rolled back: it runs on').to.equal('running');
    await w.settled();
    const ended = await w.get(processId);
    expect(ended).to.deep.include({ state: 'failed' });
    expect(ended.failure?.kind, 'its step gave up').to.equal('dead');
  });

  it('should leave a process failed when a compensation fails, and compensate again on RetryProcess', async () => {
    const w = await open();
    const { processId, orderId, process: failed } = await w.checkout('4242', `no-ship-no-refund-${randomUUID()}`);
    expect(failed.state).to.equal('failed');
    expect(failed.failure?.message).to.match(/^compensating Charge failed: /);
    expect(await w.shop.count(`release:${orderId}`), 'nothing before the failed compensation ran').to.equal(0);
    const retried = await w.mediator.send(new RetryProcess({ processId }), ann);
    expect(retried).to.deep.include({ ok: true, value: { processId, state: 'compensating' } });
    await w.settled();
    const undone = await w.get(processId);
    expect(undone.state).to.equal('compensated');
    expect([await w.shop.count(`refund:${orderId}`), await w.shop.count(`release:${orderId}`)]).to.deep.equal([1, 1]);
    const again = await w.mediator.send(new RetryProcess({ processId }), ann);
    expect(again).to.have.nested.property('failure.code', 'not_retryable');
  });

  it('should cancel a running process (undoing what it did), in its tenant only', async () => {
    const w = await open();
    const { processId, orderId } = await w.checkout('pending');
    const other = { ...ann, tenant: 'globex' };
    expect(await w.mediator.send(new GetProcess({ processId }), other)).to.have.nested.property(
      'failure.kind',
      'not_found',
    );
    expect(await w.mediator.send(new CancelProcess({ processId }), other)).to.have.nested.property(
      'failure.kind',
      'not_found',
    );
    const cancelled = await w.mediator.send(new CancelProcess({ processId }), ann);
    expect(cancelled).to.deep.include({ ok: true, value: { processId, state: 'compensating' } });
    await w.settled();
    const undone = await w.get(processId);
    expect(undone).to.deep.include({ state: 'compensated' });
    expect(undone.failure).to.deep.include({ kind: 'cancelled' });
    expect([await w.shop.count(`refund:${orderId}`), await w.shop.count(`release:${orderId}`)]).to.deep.equal([1, 1]);
    const twice = await w.mediator.send(new CancelProcess({ processId }), ann);
    expect(twice).to.have.nested.property('failure.code', 'not_running');
  });

  it('should run a step once when its job is delivered again, and refuse a step job sent by a client', async () => {
    const w = await open();
    const { processId, orderId } = await w.checkout('4242');
    const job = { id: randomUUID(), kind: 'job' as const, type: 'x', payload: {}, occurredAt: '', headers: {} };
    const again = await w.mediator.send(new ProcessStep({ processId, step: 1, phase: 'run' }), {
      ...ann,
      job,
      message: { id: job.id, consumer: 'spec.redelivery' },
    });
    expect(again).to.deep.include({ ok: true, value: { moved: false } });
    expect(w.shop.calls.get(`charge:${orderId}`)).to.equal(1);
    const client = await w.mediator.send(new ProcessStep({ processId, step: 1, phase: 'run' }), ann);
    expect(client).to.have.nested.property('failure.kind', 'forbidden');
  });
});

describe('process() types', () => {
  it('should make a step that cannot take the previous result a compile error (checked by tsc in npm test)', () => {
    const declare = () =>
      process('Mismatch', [
        step(Reserve),
        // @ts-expect-error Ship takes { orderId, chargeId }, Reserve gives { orderId, qty, card, reservationId }
        step(Ship),
      ]);
    const fine = () => process('Fine', [step(Reserve, { compensate: Release }), step(Charge)]);
    expect(typeof declare).to.equal('function');
    expect(fine().steps.map((s) => s.name)).to.deep.equal(['Reserve', 'Charge']);
  });
});
