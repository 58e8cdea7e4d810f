// The Outbox contract: transactional adds, exclusive claims in order, per-aggregate order, retries and parking.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { Outbox, OutboxMessage, UnitOfWork } from '../core/ports.js';
import { ManualClock } from './clock.js';
import { assertIncludes, withFixture, type TestApi } from './harness.js';

const DAY = 86_400_000;

/** What the Outbox contract runs against, made fresh (and empty) for every case. */
export interface OutboxFixture {
  /** An outbox with no messages in it. */
  readonly outbox: Outbox;
  /** The unit of work whose transactions `outbox.add` joins. */
  readonly uow: UnitOfWork;
  close(): Promise<void>;
}

/** Optional parts of the Outbox port the adapter implements: their cases are registered only when set. */
export interface OutboxContractOptions {
  /** The outbox implements `purgeSent`: check that it takes old sent messages only. */
  readonly purgeSent?: boolean;
}

/**
 * Registers the Outbox contract for an adapter; `make` must give an empty outbox every time. It receives a fresh
 * `ManualClock` per case: an outbox that judges leases and send times must read them from it (`purgeSent` cases).
 * @example
 * runOutboxContract({ describe, it }, 'memory', async (clock) => {
 *   const uow = new MemoryUnitOfWork();
 *   return { uow, outbox: new MemoryOutbox(uow, clock), close: async () => {} };
 * }, { purgeSent: true });
 */
export function runOutboxContract(
  t: TestApi,
  name: string,
  make: (clock: ManualClock) => Promise<OutboxFixture>,
  options: OutboxContractOptions = {},
): void {
  const message = (type: string, aggregateId?: string): OutboxMessage => ({
    id: randomUUID(),
    kind: 'event',
    type,
    payload: { type, text: 'Zoë ✓' },
    occurredAt: new Date().toISOString(),
    aggregateId,
    headers: { requestId: 'r-1' },
  });
  /** The fixture, its clock, and `commit(messages)`: adds them in a committed transaction. */
  const withCommit = async () => {
    const clock = new ManualClock('2026-01-01T00:00:00Z');
    const fixture = await make(clock);
    const { uow, outbox } = fixture;
    const commit = (messages: OutboxMessage[]) =>
      uow.transaction(
        () => outbox.add(messages),
        () => true,
      );
    return { ...fixture, clock, commit };
  };
  const test = (title: string, body: (fixture: Awaited<ReturnType<typeof withCommit>>) => Promise<void>) =>
    t.it(title, () => withFixture(withCommit, body));
  const purgeSentOf = (outbox: Outbox) => {
    if (!outbox.purgeSent) assert.fail('runOutboxContract({ purgeSent: true }) but the outbox has no purgeSent()');
    return (olderThanMs: number) => outbox.purgeSent!(olderThanMs);
  };

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

    test('should hold a delayed message until its availableAt, by the outbox clock', async (fixture) => {
      const { outbox, commit, clock } = fixture;
      const due = new Date(clock.now() + 60_000).toISOString();
      const delayed = { ...message('later'), availableAt: due };
      await commit([delayed, message('now')]);
      const claimed = await outbox.claim(10);
      assert.deepStrictEqual(
        claimed.map((m) => m.type),
        ['now'],
      );
      assert.equal(await outbox.pending(), 1, 'the claimed one; the delayed one is not due');
      await outbox.markSent([claimed[0]!.id]);
      assert.equal(await outbox.pending(), 0);
      clock.advance(59_999);
      assert.deepStrictEqual(await outbox.claim(10), []);
      clock.advance(1);
      assert.equal(await outbox.pending(), 1);
      const [later] = await outbox.claim(10);
      assert.ok(later, 'due at its availableAt');
      assertIncludes(later, { id: delayed.id, availableAt: due });
    });

    test('should hand out due delayed and immediate messages in written order, one limit, aggregates in order', async ({
      outbox,
      commit,
      clock,
    }) => {
      const at = new Date(clock.now() + 1_000).toISOString();
      const written = [
        { ...message('s1', 'order-1'), availableAt: at },
        message('n1'),
        { ...message('s2'), availableAt: at },
        message('n2', 'order-1'), // behind s1 of its aggregate, due or not
        message('n3'),
      ];
      await commit(written);
      const types = (claimed: readonly OutboxMessage[]) => claimed.map((m) => m.type);
      const sent = async (claimed: readonly OutboxMessage[]) => outbox.markSent(claimed.map((m) => m.id));
      const now = await outbox.claim(10);
      assert.deepStrictEqual(types(now), ['n1', 'n3'], 'not n2: the earlier s1 of its aggregate is not sent');
      await sent(now);
      clock.advance(1_000);
      const due = await outbox.claim(2);
      assert.deepStrictEqual(types(due), ['s1', 's2'], 'the delayed ones, in written order, within the limit');
      assert.deepStrictEqual(types(await outbox.claim(10)), [], 'n2 waits while s1 is out');
      await sent(due);
      assert.deepStrictEqual(types(await outbox.claim(10)), ['n2']);
    });

    test('should skip a message whose id it holds already, sent or not', async ({ outbox, commit }) => {
      const first = message('first');
      await commit([first]);
      await commit([{ ...first, type: 'again' }]);
      const [claimed, ...more] = await outbox.claim(10);
      assert.equal(claimed?.type, 'first');
      assert.deepStrictEqual(more, []);
      await outbox.markSent([first.id]);
      await commit([{ ...first, type: 'again' }]);
      assert.deepStrictEqual(await outbox.claim(10), []);
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

    if (options.purgeSent) {
      test('should purge only messages sent before the cut-off: never unsent, in-flight or parked ones', async ({
        outbox,
        commit,
        clock,
      }) => {
        const purgeSent = purgeSentOf(outbox);
        const [oldSent, youngSent, parked, inFlight, unsent] = [
          'old-sent',
          'young-sent',
          'parked',
          'in-flight',
          'unsent',
        ];
        const written = [oldSent, youngSent, parked, inFlight, unsent].map((type) => message(type));
        const id = (type: string) => written.find((m) => m.type === type)!.id;
        await commit(written);
        assert.deepStrictEqual(
          (await outbox.claim(3)).map((m) => m.type),
          [oldSent, youngSent, parked],
        );
        await outbox.markSent([id(oldSent)]);
        await outbox.markFailed(id(parked), 'unroutable', true);
        clock.advance(5 * DAY);
        await outbox.markSent([id(youngSent)]);
        clock.advance(3 * DAY); // old-sent was sent 8 days ago, young-sent 3; every message was written 8 days ago
        assert.deepStrictEqual(
          (await outbox.claim(1)).map((m) => m.type),
          [inFlight],
          'claimed now, so in flight during the purges',
        );

        assert.equal(await purgeSent(7 * DAY), 1, 'only old-sent was sent more than 7 days ago');
        assert.equal(await purgeSent(0), 1, 'a zero cut-off takes every sent message (young-sent), and only those');
        assert.equal(await purgeSent(0), 0);
        assert.equal(await outbox.pending(), 2, 'in-flight and unsent are still there');
        await outbox.release([id(inFlight)]);
        assert.deepStrictEqual(
          (await outbox.claim(10)).map((m) => m.type),
          [inFlight, unsent],
          'in-flight and unsent still flow; parked stays parked',
        );
      });

      test('should keep messages sent exactly at the cut-off, and purge nothing from an outbox with none sent', async ({
        outbox,
        commit,
        clock,
      }) => {
        const purgeSent = purgeSentOf(outbox);
        assert.equal(await purgeSent(0), 0);
        await commit([message('a'), message('b')]);
        const [a] = await outbox.claim(1);
        await outbox.markSent([a!.id]);
        clock.advance(DAY);
        assert.equal(await purgeSent(DAY), 0, 'sent exactly one day ago: not older than the cut-off');
        clock.advance(1);
        assert.equal(await purgeSent(DAY), 1);
        assert.equal(await outbox.pending(), 1, 'b is still waiting');
      });
    }
  });
}
