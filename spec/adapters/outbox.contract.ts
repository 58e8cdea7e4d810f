// The Outbox contract: transactional adds, exclusive claims in order, per-aggregate order, retries and parking.
import { randomUUID } from 'node:crypto';
import type { Outbox, OutboxMessage, UnitOfWork } from '../../lib/index.js';
import { expect } from '../helpers.js';

/** Runs the Outbox contract against an adapter; `make` must give an empty outbox. */
export function outboxContract(name: string, make: () => Promise<{ outbox: Outbox; uow: UnitOfWork; close(): Promise<void> }>): void {
  describe(`Outbox contract: ${name}`, () => {
    let outbox: Outbox, uow: UnitOfWork, close: () => Promise<void>;
    beforeEach(async () => ({ outbox, uow, close } = await make()));
    afterEach(() => close());
    const message = (type: string, aggregateId?: string): OutboxMessage => ({
      id: randomUUID(), kind: 'event', type, payload: { type, text: 'Zoë ✓' }, occurredAt: new Date().toISOString(),
      aggregateId, headers: { requestId: 'r-1' },
    });
    const commit = (messages: OutboxMessage[]) => uow.transaction(() => outbox.add(messages), () => true);

    it('should hand out committed messages in order, exactly as written', async () => {
      const written = [message('a'), message('b'), message('c')];
      await commit(written);
      expect(await outbox.pending()).to.equal(3);
      const claimed = await outbox.claim(10);
      expect(claimed.map(({ attempts, ...m }) => m)).to.deep.equal(written);
      expect(claimed.map((m) => m.attempts)).to.deep.equal([0, 0, 0]);
    });

    it('should drop messages whose transaction rolled back', async () => {
      await uow.transaction(() => outbox.add([message('gone')]), () => false);
      expect(await outbox.pending()).to.equal(0);
      expect(await outbox.claim(10)).to.deep.equal([]);
    });

    it('should never hand a claimed message out twice, and honour the limit', async () => {
      await commit([message('a'), message('b'), message('c')]);
      const first = await outbox.claim(2);
      const second = await outbox.claim(10);
      expect(first.map((m) => m.type)).to.deep.equal(['a', 'b']);
      expect(second.map((m) => m.type)).to.deep.equal(['c']);
    });

    it('should forget sent messages', async () => {
      await commit([message('a')]);
      const [m] = await outbox.claim(1);
      await outbox.markSent([m!.id]);
      expect(await outbox.pending()).to.equal(0);
      expect(await outbox.claim(10)).to.deep.equal([]);
    });

    it('should give a failed message back with one more attempt, and park it when told to', async () => {
      await commit([message('flaky')]);
      const [m] = await outbox.claim(1);
      await outbox.markFailed(m!.id, 'broker down', false);
      const [again] = await outbox.claim(1);
      expect(again).to.include({ id: m!.id, attempts: 1 });
      await outbox.markFailed(m!.id, 'still down', true);
      expect(await outbox.pending()).to.equal(0);
      expect(await outbox.claim(10)).to.deep.equal([]);
    });

    it('should hand out only the oldest unsent message of an aggregate, letting other aggregates flow', async () => {
      await commit([message('a1', 'A'), message('b1', 'B'), message('a2', 'A'), message('b2', 'B'), message('free')]);
      const first = await outbox.claim(10);
      expect(first.map((m) => m.type)).to.deep.equal(['a1', 'b1', 'free']);
      expect(await outbox.claim(10), 'a2 and b2 wait while a1 and b1 are out').to.deep.equal([]);
      await outbox.markFailed(first[0]!.id, 'nope', false);
      await outbox.markSent([first[1]!.id]);
      expect((await outbox.claim(10)).map((m) => m.type), 'a1 again before a2; b2 after b1 was sent').to.deep.equal(['a1', 'b2']);
    });

    it('should take released messages back without counting an attempt', async () => {
      await commit([message('a', 'A'), message('b')]);
      const claimed = await outbox.claim(10);
      await outbox.release(claimed.map((m) => m.id));
      const again = await outbox.claim(10);
      expect(again.map((m) => [m.type, m.attempts])).to.deep.equal([['a', 0], ['b', 0]]);
      expect(await outbox.pending()).to.equal(2);
    });

    it('should not let a parked message block its aggregate for ever', async () => {
      await commit([message('a1', 'A'), message('a2', 'A')]);
      const [a1] = await outbox.claim(10);
      await outbox.markFailed(a1!.id, 'poison', true);
      expect((await outbox.claim(10)).map((m) => m.type)).to.deep.equal(['a2']);
    });
  });
}
