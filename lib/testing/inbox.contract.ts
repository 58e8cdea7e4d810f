// The Inbox contract: one record per consumer and message, undone with a rolled-back transaction.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { Inbox, UnitOfWork } from '../core/ports.js';
import { ManualClock } from './clock.js';
import { withFixture, type TestApi } from './harness.js';

const DAY = 86_400_000;

/** What the Inbox contract runs against, made fresh for every case. */
export interface InboxFixture {
  readonly inbox: Inbox;
  /** The unit of work whose transactions `inbox.record` joins. */
  readonly uow: UnitOfWork;
  close(): Promise<void>;
}

/** Optional parts of the Inbox port the adapter implements: their cases are registered only when set. */
export interface InboxContractOptions {
  /** The inbox implements `purge`: check that it forgets old records only. */
  readonly purge?: boolean;
}

/**
 * Registers the Inbox contract for an adapter. `make` receives a fresh `ManualClock` per case: an inbox that
 * remembers when it recorded a message must read the time from it (`purge` cases).
 * @example
 * runInboxContract({ describe, it }, 'memory', async (clock) => {
 *   const uow = new MemoryUnitOfWork();
 *   return { uow, inbox: new MemoryInbox(uow, clock), close: async () => {} };
 * }, { purge: true });
 */
export function runInboxContract(
  t: TestApi,
  name: string,
  make: (clock: ManualClock) => Promise<InboxFixture>,
  options: InboxContractOptions = {},
): void {
  const test = (title: string, body: (fixture: InboxFixture & { clock: ManualClock }) => Promise<void>) =>
    t.it(title, () => {
      const clock = new ManualClock('2026-01-01T00:00:00Z');
      return withFixture(async () => ({ ...(await make(clock)), clock }), body);
    });
  const commit = <T>(uow: UnitOfWork, work: () => Promise<T>) => uow.transaction(work, () => true);
  const purgeOf = (inbox: Inbox) => {
    if (!inbox.purge) assert.fail('runInboxContract({ purge: true }) but the inbox has no purge()');
    return (olderThanMs: number) => inbox.purge!(olderThanMs);
  };

  t.describe(`Inbox contract: ${name}`, () => {
    test('should record a message once per consumer', async ({ inbox, uow }) => {
      const id = randomUUID();
      assert.equal(await commit(uow, () => inbox.record('billing', id)), true);
      assert.equal(await commit(uow, () => inbox.record('billing', id)), false);
      assert.equal(await commit(uow, () => inbox.record('shipping', id)), true);
    });

    test('should forget a record whose transaction rolled back', async ({ inbox, uow }) => {
      const id = randomUUID();
      await uow.transaction(
        () => inbox.record('billing', id),
        () => false,
      );
      assert.equal(await commit(uow, () => inbox.record('billing', id)), true);
    });

    test('should let exactly one of concurrent records of one message win', async ({ inbox, uow }) => {
      const id = randomUUID();
      const wins = await Promise.all(Array.from({ length: 10 }, () => commit(uow, () => inbox.record('billing', id))));
      assert.equal(wins.filter(Boolean).length, 1);
    });

    if (options.purge) {
      test('should purge only records made before the cut-off, of every consumer', async ({ inbox, uow, clock }) => {
        const purge = purgeOf(inbox);
        const [old, young] = [randomUUID(), randomUUID()];
        assert.equal(await commit(uow, () => inbox.record('billing', old)), true);
        assert.equal(await commit(uow, () => inbox.record('shipping', old)), true);
        clock.advance(10 * DAY);
        assert.equal(await commit(uow, () => inbox.record('billing', young)), true);
        clock.advance(21 * DAY); // the old records were made 31 days ago, the young one 21

        assert.equal(await purge(30 * DAY), 2);
        assert.equal(await purge(30 * DAY), 0);
        assert.equal(await commit(uow, () => inbox.record('billing', young)), false, 'still remembered');
        assert.equal(await commit(uow, () => inbox.record('billing', old)), true, 'forgotten: records anew');
        assert.equal(await commit(uow, () => inbox.record('shipping', old)), true, 'forgotten: records anew');
      });

      test('should keep a record made exactly at the cut-off', async ({ inbox, uow, clock }) => {
        const purge = purgeOf(inbox);
        const id = randomUUID();
        await commit(uow, () => inbox.record('billing', id));
        clock.advance(DAY);
        assert.equal(await purge(DAY), 0);
        clock.advance(1);
        assert.equal(await purge(DAY), 1);
      });
    }
  });
}
