// The JobStore contract: jobs queued and settled with their transactions, taken at once, cancelled only while queued.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { JobRecord, JobStore, UnitOfWork } from '../core/ports.js';
import { ManualClock } from './clock.js';
import { assertIncludes, withFixture, type TestApi } from './harness.js';

/** What the JobStore contract runs against, made fresh for every case. */
export interface JobStoreFixture {
  readonly store: JobStore;
  /** The unit of work whose transactions `add`, `settle` and `cancel` join. */
  readonly uow: UnitOfWork;
  close(): Promise<void>;
}

/** Optional parts of the JobStore port the adapter implements: their cases are registered only when set. */
export interface JobStoreContractOptions {
  /** The store implements `purge`: check that it deletes settled jobs only, by its clock. */
  readonly purge?: boolean;
}

const DAY = 86_400_000;
const AT = '2026-01-01T00:00:00.000Z';
const LATER = '2026-01-01T00:00:05.000Z';

/**
 * Registers the JobStore contract for an adapter; `make` must give an empty store every time. It receives a fresh
 * `ManualClock` per case (at 2026-01-31): a store that purges must judge ages by it.
 * @example
 * runJobStoreContract({ describe, it }, 'memory', async (clock) => {
 *   const uow = new MemoryUnitOfWork();
 *   return { uow, store: new MemoryJobStore(uow, clock), close: async () => {} };
 * }, { purge: true });
 */
export function runJobStoreContract(
  t: TestApi,
  name: string,
  make: (clock: ManualClock) => Promise<JobStoreFixture>,
  options: JobStoreContractOptions = {},
): void {
  const test = (title: string, body: (fixture: JobStoreFixture) => Promise<void>) =>
    t.it(title, () => withFixture(() => make(new ManualClock('2026-01-31T00:00:00Z')), body));
  const job = (overrides: Partial<JobRecord> = {}): JobRecord => ({
    jobId: randomUUID(),
    type: 'SendReceipt',
    queue: 'jobs.SendReceipt',
    tenant: 'acme',
    state: 'queued',
    attempts: 0,
    enqueuedAt: AT,
    runAt: LATER,
    ...overrides,
  });
  /** The record (an absent one fails) has these fields. */
  const has = (record: JobRecord | undefined, expected: Partial<JobRecord>, message?: string) =>
    assertIncludes(record ?? {}, expected, message);
  const inTransaction = <T>(uow: UnitOfWork, work: () => Promise<T>, commit = true) =>
    uow.transaction(work, () => commit);

  t.describe(`JobStore contract: ${name}`, () => {
    test('should record a job queued with the commit that enqueued it, and none after a rollback', async (f) => {
      const [kept, dropped] = [job(), job()];
      await inTransaction(f.uow, () => f.store.add([kept]));
      await inTransaction(f.uow, () => f.store.add([dropped]), false);
      assert.deepEqual(await f.store.status(kept.jobId), kept);
      assert.equal(await f.store.status(dropped.jobId), undefined);
    });

    test('should keep the first record of a job id added twice', async ({ store, uow }) => {
      const first = job({ key: 'nightly/2026-01-01' });
      await inTransaction(uow, () => store.add([first]));
      await inTransaction(uow, () => store.add([{ ...first, queue: 'other', runAt: AT }]));
      assert.deepEqual(await store.status(first.jobId), first);
    });

    test('should take a queued job as running, counting each start as an attempt', async ({ store, uow }) => {
      const queued = job();
      await inTransaction(uow, () => store.add([queued]));
      const taken = await store.start(queued.jobId, AT);
      has(taken, { state: 'running', attempts: 1, startedAt: AT });
      const retried = await store.start(queued.jobId, LATER);
      has(retried, { state: 'running', attempts: 2, startedAt: AT }, 'the first start stays');
      assert.deepEqual(await store.status(queued.jobId), retried);
      assert.equal(await store.start(randomUUID(), AT), undefined, 'an unknown job');
    });

    test('should settle with the commit, and not after a rollback', async ({ store, uow }) => {
      const running = job();
      await inTransaction(uow, () => store.add([running]));
      await store.start(running.jobId, AT);
      const done = { state: 'succeeded' as const, result: { n: 1 } };
      assert.equal(await inTransaction(uow, () => store.settle(running.jobId, done, LATER), false), true);
      assert.equal((await store.status(running.jobId))?.state, 'running');
      assert.equal(await inTransaction(uow, () => store.settle(running.jobId, done, LATER)), true);
      has(await store.status(running.jobId), {
        state: 'succeeded',
        result: { n: 1 },
        settledAt: LATER,
        attempts: 1,
      });
    });

    test('should record a failure, and keep the first outcome of a job settled twice', async ({ store, uow }) => {
      const [failed, dead] = [job(), job()];
      await inTransaction(uow, () => store.add([failed, dead]));
      const failure = { kind: 'domain' as const, message: 'Domain rule failed: no_stock', code: 'no_stock' };
      const settled = await inTransaction(uow, () => store.settle(failed.jobId, { state: 'failed', failure }, LATER));
      assert.equal(settled, true);
      const again = await inTransaction(uow, () => store.settle(failed.jobId, { state: 'succeeded', result: 1 }, AT));
      assert.equal(again, false, 'a settled job is not settled again');
      const unknown = await inTransaction(uow, () => store.settle(randomUUID(), { state: 'succeeded', result: 1 }, AT));
      assert.equal(unknown, false);
      const record = await store.status(failed.jobId);
      has(record, { state: 'failed', failure });
      assert.equal(record?.result, undefined);
      const died = { kind: 'dead' as const, message: 'dead-lettered after 5 attempts' };
      await inTransaction(uow, () => store.settle(dead.jobId, { state: 'dead', failure: died }, LATER));
      has(await store.status(dead.jobId), { state: 'dead', failure: died });
      has(await store.start(dead.jobId, LATER), { state: 'dead', attempts: 0 }, 'a settled job is not taken');
    });

    test('should cancel a queued job only, and never start a cancelled one', async ({ store, uow }) => {
      const [queued, running] = [job(), job()];
      await inTransaction(uow, () => store.add([queued, running]));
      await store.start(running.jobId, AT);
      assert.equal(await inTransaction(uow, () => store.cancel(queued.jobId, LATER)), true);
      assert.equal(await inTransaction(uow, () => store.cancel(running.jobId, LATER)), false);
      assert.equal(await inTransaction(uow, () => store.cancel(randomUUID(), LATER)), false);
      has(await store.start(queued.jobId, LATER), { state: 'cancelled', attempts: 0, settledAt: LATER });
      assert.equal((await store.status(running.jobId))?.state, 'running');
    });

    if (options.purge) {
      test('should purge jobs settled or cancelled before the cut-off only, never open or keyed ones', async (f) => {
        const { store, uow } = f;
        if (!store.purge) assert.fail('runJobStoreContract({ purge: true }) but the store has no purge()');
        const [old, recent, cancelled, queued, running] = [job(), job(), job(), job(), job()];
        const keyed = job({ key: 'welcome/u-1' });
        await inTransaction(uow, () => store.add([old, recent, cancelled, queued, running, keyed]));
        await inTransaction(uow, () => store.settle(keyed.jobId, { state: 'succeeded', result: 1 }, AT));
        await store.start(running.jobId, AT);
        await inTransaction(uow, () => store.settle(old.jobId, { state: 'succeeded', result: 1 }, AT));
        const failure = { kind: 'dead' as const, message: 'gave up' };
        await inTransaction(uow, () =>
          store.settle(recent.jobId, { state: 'dead', failure }, '2026-01-20T00:00:00.000Z'),
        );
        await inTransaction(uow, () => store.cancel(cancelled.jobId, AT));

        assert.equal(await store.purge(15 * DAY), 2, 'the old and the cancelled one');
        assert.equal(await store.purge(15 * DAY), 0);
        assert.equal(await store.status(old.jobId), undefined);
        assert.equal(await store.status(cancelled.jobId), undefined);
        assert.equal(await store.purge(11 * DAY), 0, 'settled exactly at the cut-off: kept');
        assert.equal(await store.purge(11 * DAY - 1), 1);
        assert.equal((await store.status(queued.jobId))?.state, 'queued');
        assert.equal((await store.status(running.jobId))?.state, 'running');
        has(
          await store.status(keyed.jobId),
          { state: 'succeeded', key: 'welcome/u-1' },
          'a keyed job is kept for good',
        );
      });
    }

    test('should let exactly one of two settles racing for a job win', async ({ store, uow }) => {
      const jobs = Array.from({ length: 5 }, () => job());
      await inTransaction(uow, () => store.add(jobs));
      const failure = { kind: 'domain' as const, message: 'no', code: 'no' };
      for (const { jobId } of jobs) {
        await store.start(jobId, AT);
        const wins = await Promise.all([
          inTransaction(uow, () => store.settle(jobId, { state: 'succeeded', result: 1 }, LATER)),
          inTransaction(uow, () => store.settle(jobId, { state: 'failed', failure }, LATER)),
        ]);
        assert.equal(wins.filter(Boolean).length, 1, `${jobId}: ${wins.join(', ')}`);
        assert.equal((await store.status(jobId))?.state, wins[0] ? 'succeeded' : 'failed');
      }
    });

    test('should let exactly one of a start and a cancel racing for a queued job win', async ({ store, uow }) => {
      const jobs = Array.from({ length: 10 }, () => job());
      await inTransaction(uow, () => store.add(jobs));
      for (const { jobId } of jobs) {
        const [taken, cancelled] = await Promise.all([
          store.start(jobId, AT),
          inTransaction(uow, () => store.cancel(jobId, AT)),
        ]);
        assert.equal(taken?.state === 'running', !cancelled, `${jobId}: ${taken?.state} / cancelled ${cancelled}`);
        assert.equal((await store.status(jobId))?.state, cancelled ? 'cancelled' : 'running');
      }
    });
  });
}
