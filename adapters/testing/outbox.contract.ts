// The Outbox contract: transactional adds, exclusive claims in order, per-aggregate order, retries and parking.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { Outbox, OutboxMessage, UnitOfWork } from '../../lib/ports.js';
import { assertIncludes, withFixture, type TestApi } from './harness.js';

/** What the Outbox contract runs against, made fresh (and empty) for every case. */
export interface OutboxFixture {
  /** An outbox with no messages in it. */
  readonly outbox: Outbox;
  /** The unit of work whose transactions `outbox.add` joins. */
  readonly uow: UnitOfWork;
  close(): Promise<void>;
}

/**
 * Registers the Outbox contract for an adapter; `make` must give an empty outbox every time.
 * @example
 * runOutboxContract({ describe, it }, 'memory', async () => {
 *   const uow = new MemoryUnitOfWork();
 *   return { uow, outbox: new MemoryOutbox(uow), close: async () => {} };
 * });
 */
export function runOutboxContract(t: TestApi, name: string, make: () => Promise<OutboxFixture>): void {
  const message = (type: string, aggregateId?: string): OutboxMessage => ({
    id: randomUUID(),
    kind: 'event',
    type,
    payload: { type, text: 'Zoë ✓' },
    occurredAt: new Date().toISOString(),
    aggregateId,
    headers: { requestId: 'r-1' },
  });
  /** The fixture, and `commit(messages)`: adds them in a committed transaction. */
  const withCommit = async () => {
    const fixture = await make();
    const { uow, outbox } = fixture;
    const commit = (messages: OutboxMessage[]) =>
      uow.transaction(
        () => outbox.add(messages),
        () => true,
      );
    return { ...fixture, commit };
  };
  const test = (title: string, body: (fixture: Awaited<ReturnType<typeof withCommit>>) => Promise<void>) =>
    t.it(title, () => withFixture(withCommit, body));

  t.describe(`Outbox contract: ${name}`, () => {
    test('should hand out committed messages in order, exactly as written', async ({ outbox, commit }) => {
      const written = [message('a'), message('b'), message('c')];
      await commit(written);
      assert.equal(await outbox.pending(), 3);
      const claimed = await outbox.claim(10);
      assert.deepStrictEqual(
        claimed.map(({ attempts, ...m }) => m),
        written,
      );
      assert.deepStrictEqual(
        claimed.map((m) => m.attempts),
        [0, 0, 0],
      );
    });

    test('should drop messages whose transaction rolled back', async ({ outbox, uow }) => {
      await uow.transaction(
        () => outbox.add([message('gone')]),
        () => false,
      );
      assert.equal(await outbox.pending(), 0);
      assert.deepStrictEqual(await outbox.claim(10), []);
    });

    test('should never hand a claimed message out twice, and honour the limit', async ({ outbox, commit }) => {
      await commit([message('a'), message('b'), message('c')]);
      const first = await outbox.claim(2);
      const second = await outbox.claim(10);
      assert.deepStrictEqual(
        first.map((m) => m.type),
        ['a', 'b'],
      );
      assert.deepStrictEqual(
        second.map((m) => m.type),
        ['c'],
      );
    });

    test('should forget sent messages', async ({ outbox, commit }) => {
      await commit([message('a')]);
      const [m] = await outbox.claim(1);
      assert.ok(m, 'the committed message should be claimed');
      await outbox.markSent([m.id]);
      assert.equal(await outbox.pending(), 0);
      assert.deepStrictEqual(await outbox.claim(10), []);
    });

    test('should give a failed message back with one more attempt, and park it when told to', async (fixture) => {
      const { outbox, commit } = fixture;
      await commit([message('flaky')]);
      const [m] = await outbox.claim(1);
      assert.ok(m, 'the committed message should be claimed');
      await outbox.markFailed(m.id, 'broker down', false);
      const [again] = await outbox.claim(1);
      assert.ok(again, 'the failed message should be claimable again');
      assertIncludes(again, { id: m.id, attempts: 1 });
      await outbox.markFailed(m.id, 'still down', true);
      assert.equal(await outbox.pending(), 0);
      assert.deepStrictEqual(await outbox.claim(10), []);
    });

    test('should hand out only the oldest unsent message of an aggregate, letting other aggregates flow', async ({
      outbox,
      commit,
    }) => {
      await commit([message('a1', 'A'), message('b1', 'B'), message('a2', 'A'), message('b2', 'B'), message('free')]);
      const first = await outbox.claim(10);
      assert.deepStrictEqual(
        first.map((m) => m.type),
        ['a1', 'b1', 'free'],
      );
      assert.deepStrictEqual(await outbox.claim(10), [], 'a2 and b2 wait while a1 and b1 are out');
      await outbox.markFailed(first[0]!.id, 'nope', false);
      await outbox.markSent([first[1]!.id]);
      assert.deepStrictEqual(
        (await outbox.claim(10)).map((m) => m.type),
        ['a1', 'b2'],
        'a1 again before a2; b2 after b1 was sent',
      );
    });

    test('should take released messages back without counting an attempt', async ({ outbox, commit }) => {
      await commit([message('a', 'A'), message('b')]);
      const claimed = await outbox.claim(10);
      await outbox.release(claimed.map((m) => m.id));
      const again = await outbox.claim(10);
      assert.deepStrictEqual(
        again.map((m) => [m.type, m.attempts]),
        [
          ['a', 0],
          ['b', 0],
        ],
      );
      assert.equal(await outbox.pending(), 2);
    });

    test('should not let a parked message block its aggregate for ever', async ({ outbox, commit }) => {
      await commit([message('a1', 'A'), message('a2', 'A')]);
      const [a1] = await outbox.claim(10);
      assert.ok(a1, 'the first message of the aggregate should be claimed');
      await outbox.markFailed(a1.id, 'poison', true);
      assert.deepStrictEqual(
        (await outbox.claim(10)).map((m) => m.type),
        ['a2'],
      );
    });
  });
}
