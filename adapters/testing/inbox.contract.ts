// The Inbox contract: one record per consumer and message, undone with a rolled-back transaction.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { Inbox, UnitOfWork } from '../../lib/ports.js';
import { withFixture, type TestApi } from './harness.js';

/** What the Inbox contract runs against, made fresh for every case. */
export interface InboxFixture {
  readonly inbox: Inbox;
  /** The unit of work whose transactions `inbox.record` joins. */
  readonly uow: UnitOfWork;
  close(): Promise<void>;
}

/**
 * Registers the Inbox contract for an adapter.
 * @example
 * runInboxContract({ describe, it }, 'memory', async () => {
 *   const uow = new MemoryUnitOfWork();
 *   return { uow, inbox: new MemoryInbox(uow), close: async () => {} };
 * });
 */
export function runInboxContract(t: TestApi, name: string, make: () => Promise<InboxFixture>): void {
  const test = (title: string, body: (fixture: InboxFixture) => Promise<void>) =>
    t.it(title, () => withFixture(make, body));
  const commit = <T>(uow: UnitOfWork, work: () => Promise<T>) => uow.transaction(work, () => true);

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
  });
}
