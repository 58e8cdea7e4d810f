// The Inbox contract: one record per consumer and message, undone with a rolled-back transaction.
import { randomUUID } from 'node:crypto';
import type { Inbox, UnitOfWork } from '../../lib/index.js';
import { expect } from '../helpers.js';

/** Runs the Inbox contract against an adapter. */
export function inboxContract(name: string, make: () => Promise<{ inbox: Inbox; uow: UnitOfWork; close(): Promise<void> }>): void {
  describe(`Inbox contract: ${name}`, () => {
    let inbox: Inbox, uow: UnitOfWork, close: () => Promise<void>;
    before(async () => ({ inbox, uow, close } = await make()));
    after(() => close());
    const commit = <T>(work: () => Promise<T>) => uow.transaction(work, () => true);

    it('should record a message once per consumer', async () => {
      const id = randomUUID();
      expect(await commit(() => inbox.record('billing', id))).to.equal(true);
      expect(await commit(() => inbox.record('billing', id))).to.equal(false);
      expect(await commit(() => inbox.record('shipping', id))).to.equal(true);
    });

    it('should forget a record whose transaction rolled back', async () => {
      const id = randomUUID();
      await uow.transaction(() => inbox.record('billing', id), () => false);
      expect(await commit(() => inbox.record('billing', id))).to.equal(true);
    });

    it('should let exactly one of concurrent records of one message win', async () => {
      const id = randomUUID();
      const wins = await Promise.all(Array.from({ length: 10 }, () => commit(() => inbox.record('billing', id))));
      expect(wins.filter(Boolean)).to.have.length(1);
    });
  });
}
