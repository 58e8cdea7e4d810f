// The ProcessStore contract: processes added and saved with their transactions, read back whole, listed by tenant
// and state, and a waiting step meeting its event in whichever order the two arrive.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { ProcessRecord, ProcessStore, UnitOfWork } from '../core/ports.js';
import { ManualClock } from './clock.js';
import { assertIncludes, withFixture, type TestApi } from './harness.js';

/** What the ProcessStore contract runs against, made fresh for every case. */
export interface ProcessStoreFixture {
  readonly store: ProcessStore;
  /** The unit of work whose transactions the store's writes join. */
  readonly uow: UnitOfWork;
  close(): Promise<void>;
}

/** Optional parts of the ProcessStore port the adapter implements: their cases are registered only when set. */
export interface ProcessStoreContractOptions {
  /** The store implements `purge`: check that it deletes ended processes only, by its clock. */
  readonly purge?: boolean;
}

const DAY = 86_400_000;
const AT = '2026-01-01T00:00:00.000Z';
const LATER = '2026-01-01T00:00:05.000Z';

/**
 * Registers the ProcessStore contract for an adapter; `make` must give an empty store every time. It receives a
 * fresh `ManualClock` per case (at 2026-01-31): a store that purges must judge ages by it.
 * @example
 * runProcessStoreContract({ describe, it }, 'memory', async (clock) => {
 *   const uow = new MemoryUnitOfWork();
 *   return { uow, store: new MemoryProcessStore(uow, clock), close: async () => {} };
 * }, { purge: true });
 */
export function runProcessStoreContract(
  t: TestApi,
  name: string,
  make: (clock: ManualClock) => Promise<ProcessStoreFixture>,
  options: ProcessStoreContractOptions = {},
): void {
  const test = (title: string, body: (fixture: ProcessStoreFixture, clock: ManualClock) => Promise<void>) =>
    t.it(title, () => {
      const clock = new ManualClock('2026-01-31T00:00:00Z');
      return withFixture(
        () => make(clock),
        (fixture) => body(fixture, clock),
      );
    });
  const inTransaction = <T>(uow: UnitOfWork, work: () => Promise<T>, commit = true) =>
    uow.transaction(work, () => commit);

  t.describe(`ProcessStore contract: ${name}`, () => {
    test('should keep a process added in a committed transaction, whole, and none of a rolled-back one', async (f) => {
      const trace = { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' };
      const kept = process({ actor: { id: 'ann', roles: ['clerk'] }, deadlineAt: LATER, trace });
      const dropped = process();
      await inTransaction(f.uow, () => f.store.add(kept));
      await inTransaction(f.uow, () => f.store.add(dropped), false);
      assert.deepStrictEqual(await f.store.get(kept.processId), kept);
      assert.equal(await f.store.get(dropped.processId), undefined, 'rolled back with its transaction');
      assert.equal(await f.store.get(randomUUID()), undefined);
    });

    test('should leave a process added twice as it was first added', async (f) => {
      const first = process();
      await inTransaction(f.uow, () => f.store.add(first));
      await inTransaction(f.uow, () => f.store.add({ ...first, type: 'Other', steps: [] }));
      assert.deepStrictEqual(await f.store.get(first.processId), first);
    });

    test('should save a locked process and its steps with the transaction, and undo a rolled-back save', async (f) => {
      const started = process();
      await inTransaction(f.uow, () => f.store.add(started));
      const advanced = advance(started);
      await inTransaction(f.uow, async () => {
        const locked = await f.store.lock(started.processId);
        assert.deepStrictEqual(locked, started, 'lock reads it whole');
        await f.store.save(advanced);
      });
      assert.deepStrictEqual(await f.store.get(started.processId), advanced);
      await inTransaction(
        f.uow,
        async () => {
          await f.store.lock(started.processId);
          await f.store.save({ ...advanced, state: 'failed', steps: [] });
        },
        false,
      );
      assert.deepStrictEqual(await f.store.get(started.processId), advanced, 'the rolled-back save changed nothing');
    });

    test('should read a process it waited to lock as the transaction it waited for left it', async (f) => {
      const started = process();
      await inTransaction(f.uow, () => f.store.add(started));
      const advanced = advance(started);
      let holding!: () => void, release!: () => void;
      const held = new Promise<void>((resolve) => (holding = resolve));
      const released = new Promise<void>((resolve) => (release = resolve));
      const first = inTransaction(f.uow, async () => {
        await f.store.lock(started.processId);
        holding();
        await released;
        await f.store.save(advanced);
      });
      await held;
      const second = inTransaction(f.uow, () => f.store.lock(started.processId));
      // No event says the second lock is waiting (on Postgres, for the row; elsewhere transactions take turns): give
      // it time to be issued before the first commits, which is the case that matters.
      await new Promise((resolve) => setTimeout(resolve, 50));
      release();
      await first;
      assert.deepStrictEqual(await second, advanced, 'its steps as committed, not as they were when it began to wait');
    });

    test('should list newest first, by tenant and by state, up to a limit', async (f) => {
      const a = process({ tenant: 'acme', startedAt: '2026-01-01T00:00:01.000Z' });
      const b = process({ tenant: 'acme', startedAt: '2026-01-01T00:00:02.000Z', state: 'completed' });
      const c = process({ tenant: 'globex', startedAt: '2026-01-01T00:00:03.000Z' });
      for (const p of [a, b, c]) await inTransaction(f.uow, () => f.store.add(p));
      const ids = (list: ProcessRecord[]) => list.map((p) => p.processId);
      assert.deepStrictEqual(
        ids(await f.store.list()),
        [c, b, a].map((p) => p.processId),
      );
      assert.deepStrictEqual(
        ids(await f.store.list({ tenant: 'acme' })),
        [b, a].map((p) => p.processId),
      );
      assert.deepStrictEqual(
        ids(await f.store.list({ states: ['running'] })),
        [c, a].map((p) => p.processId),
      );
      assert.deepStrictEqual(ids(await f.store.list({ limit: 1 })), [c.processId]);
      assert.deepStrictEqual((await f.store.list({ tenant: 'acme' }))[0]!.steps, b.steps, 'with their steps');
    });

    test('should hand a waiter the event that arrived before it, once', async (f) => {
      const correlation = { event: 'PaymentConfirmed', key: randomUUID() };
      assert.equal(await inTransaction(f.uow, () => f.store.signal(correlation, { status: 'succeeded' })), undefined);
      const found = await inTransaction(f.uow, () => f.store.wait(correlation, { processId: 'p1', step: 2 }));
      assert.deepStrictEqual(found, { payload: { status: 'succeeded' } });
      assert.equal(
        await inTransaction(f.uow, () => f.store.wait(correlation, { processId: 'p2', step: 2 })),
        undefined,
        'the arrival was consumed: the next waiter waits',
      );
    });

    test('should name the waiter to the event that arrives after it, once', async (f) => {
      const correlation = { event: 'PaymentConfirmed', key: randomUUID() };
      assert.equal(
        await inTransaction(f.uow, () => f.store.wait(correlation, { processId: 'p1', step: 1 })),
        undefined,
      );
      const waiter = await inTransaction(f.uow, () => f.store.signal(correlation, { status: 'succeeded' }));
      assert.deepStrictEqual(waiter, { processId: 'p1', step: 1 });
      assert.equal(
        await inTransaction(f.uow, () => f.store.signal(correlation, { status: 'again' })),
        undefined,
        'a second arrival finds no waiter: it is kept',
      );
    });

    test('should keep the first of two arrivals, and undo a wait or a signal rolled back', async (f) => {
      const correlation = { event: 'PaymentConfirmed', key: randomUUID() };
      await inTransaction(f.uow, () => f.store.signal(correlation, { n: 1 }));
      await inTransaction(f.uow, () => f.store.signal(correlation, { n: 2 }));
      await inTransaction(f.uow, () => f.store.wait(correlation, { processId: 'p', step: 0 }), false);
      const found = await inTransaction(f.uow, () => f.store.wait(correlation, { processId: 'p', step: 0 }));
      assert.deepStrictEqual(found, { payload: { n: 1 } }, 'the rolled-back wait consumed nothing');
      const other = { event: 'PaymentConfirmed', key: randomUUID() };
      await inTransaction(f.uow, () => f.store.wait(other, { processId: 'q', step: 1 }));
      await inTransaction(f.uow, () => f.store.signal(other, {}), false);
      const waiter = await inTransaction(f.uow, () => f.store.signal(other, {}));
      assert.deepStrictEqual(waiter, { processId: 'q', step: 1 }, 'the rolled-back signal took no waiter');
    });

    test('should forget an abandoned wait (unwait), so a late event waits for a waiter instead', async (f) => {
      const correlation = { event: 'PaymentConfirmed', key: randomUUID() };
      await inTransaction(f.uow, () => f.store.wait(correlation, { processId: 'p', step: 1 }));
      await inTransaction(f.uow, () => f.store.unwait(correlation));
      assert.equal(await inTransaction(f.uow, () => f.store.signal(correlation, {})), undefined);
      await inTransaction(f.uow, () => f.store.unwait({ event: 'Nothing', key: 'none' })); // nothing to forget
    });

    if (options.purge) {
      test('should purge processes ended completed or compensated before the cut-off, by its clock, only', async (f) => {
        const old = (state: ProcessRecord['state']) => process({ state, endedAt: '2026-01-20T00:00:00.000Z' });
        const [completed, compensated, failed] = [old('completed'), old('compensated'), old('failed')];
        const young = process({ state: 'completed', endedAt: '2026-01-30T12:00:00.000Z' });
        const running = process();
        for (const p of [completed, compensated, failed, young, running])
          await inTransaction(f.uow, () => f.store.add(p));
        assert.equal(await f.store.purge!(7 * DAY), 2);
        const left = (await f.store.list()).map((p) => p.processId).sort();
        assert.deepStrictEqual(left, [failed, young, running].map((p) => p.processId).sort());
      });

      test('should purge events kept for a wait that never came, by when they arrived, only', async (f, clock) => {
        const [stale, fresh, waited] = ['stale', 'fresh', 'waited'].map((key) => ({ event: 'Paid', key }));
        await inTransaction(f.uow, () => f.store.signal(stale!, {}));
        await inTransaction(f.uow, () => f.store.wait(waited!, { processId: 'p', step: 1 }));
        clock.advance(8 * DAY);
        await inTransaction(f.uow, () => f.store.signal(fresh!, { fresh: true }));
        assert.equal(await f.store.purge!(7 * DAY), 1, 'the stale event only');
        const met = await inTransaction(f.uow, () => f.store.wait(fresh!, { processId: 'q', step: 0 }));
        assert.deepStrictEqual(met, { payload: { fresh: true } }, 'a younger event is kept');
        assert.equal(await inTransaction(f.uow, () => f.store.wait(stale!, { processId: 'r', step: 0 })), undefined);
        assert.deepStrictEqual(await inTransaction(f.uow, () => f.store.signal(waited!, {})), {
          processId: 'p',
          step: 1,
        });
      });
    }
  });
}

/** A running process of three steps, the first one running. */
function process(overrides: Partial<ProcessRecord> = {}): ProcessRecord {
  return {
    processId: randomUUID(),
    type: 'Checkout',
    tenant: 'acme',
    state: 'running',
    input: { orderId: 'o-1', card: '4242' },
    steps: [
      { name: 'ReserveStock', state: 'running', attempts: 1, compensations: 0, startedAt: AT },
      { name: 'ChargeCard', state: 'pending', attempts: 0, compensations: 0 },
      { name: 'ShipOrder', state: 'pending', attempts: 0, compensations: 0 },
    ],
    startedAt: AT,
    updatedAt: AT,
    ...overrides,
  };
}

/** The process after its first step completed and its second began. */
function advance(p: ProcessRecord): ProcessRecord {
  const [first, second, third] = p.steps;
  assertIncludes(first!, { state: 'running' });
  return {
    ...p,
    updatedAt: LATER,
    steps: [
      { ...first!, state: 'completed', result: { reservationId: 'r-1', qty: 2 }, settledAt: LATER },
      { ...second!, state: 'running', attempts: 1, startedAt: LATER },
      third!,
    ],
  };
}
