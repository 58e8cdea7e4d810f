// The IdempotencyStore contract: claims in the business transaction, results with its end, TTL, reaping.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { Claim, IdempotencyKey, IdempotencyStore, UnitOfWork } from '../core/ports.js';
import { fail, ok, type Result } from '../core/result.js';
import { ManualClock } from './clock.js';
import { withFixture, type TestApi } from './harness.js';

/** What the IdempotencyStore contract runs against, made fresh for every case. */
export interface IdempotencyStoreFixture {
  readonly store: IdempotencyStore;
  /** The unit of work whose transactions `claim` and `complete` join. */
  readonly uow: UnitOfWork;
  close(): Promise<void>;
}

/**
 * Registers the IdempotencyStore contract for an adapter. `make` receives a fresh `ManualClock` per case, and the
 * store it returns must read the time from that clock only (TTLs are moved by hand).
 * @example
 * runIdempotencyStoreContract({ describe, it }, 'memory', async (clock) => {
 *   const uow = new MemoryUnitOfWork();
 *   return { uow, store: new MemoryIdempotencyStore(uow, clock), close: async () => {} };
 * });
 */
export function runIdempotencyStoreContract(
  t: TestApi,
  name: string,
  make: (clock: ManualClock) => Promise<IdempotencyStoreFixture>,
): void {
  const id = (scope = 'tenant\u001factor'): IdempotencyKey => ({ scope, key: `key-${randomUUID()}` });
  const test = (title: string, body: (fixture: IdempotencyStoreFixture & { clock: ManualClock }) => Promise<void>) =>
    t.it(title, () => {
      const clock = new ManualClock('2026-01-01T00:00:00Z');
      return withFixture(async () => ({ ...(await make(clock)), clock }), body);
    });
  /** Runs `work` in a transaction that commits (`true`) or rolls back (`false`). */
  const inTransaction = (uow: UnitOfWork, work: () => Promise<unknown>, commit = true) =>
    uow.transaction(work, () => commit);
  /** Claims `key` and completes it with `response` in one committed transaction, as a send does. */
  const completed = (
    fixture: IdempotencyStoreFixture,
    key: IdempotencyKey,
    response: Result<unknown, string>,
    ttl = 60_000,
  ) =>
    inTransaction(fixture.uow, async () => {
      assert.equal((await fixture.store.claim(key, 'fp', 1_000)).status, 'claimed');
      await fixture.store.complete(key, 'fp', response, ttl);
    });
  /** What a claim in a transaction of its own (rolled back) finds. */
  const peek = (fixture: IdempotencyStoreFixture, key: IdempotencyKey, fingerprint = 'fp') => {
    let found!: Claim;
    return inTransaction(
      fixture.uow,
      async () => (found = await fixture.store.claim(key, fingerprint, 1_000)),
      false,
    ).then(() => found);
  };

  t.describe(`IdempotencyStore contract: ${name}`, () => {
    test('should claim a fresh key, and forget the claim when its transaction rolls back', async (fixture) => {
      const key = id();
      assert.deepStrictEqual(await peek(fixture, key), { status: 'claimed' });
      assert.deepStrictEqual(await peek(fixture, key, 'other'), { status: 'claimed' }, 'the rolled-back claim is gone');
    });

    test('should replay a result completed in a committed transaction, byte-equal', async (fixture) => {
      const key = id();
      const response = ok({ name: 'Zoë ✓', nested: { list: [1, 2.5, null], text: "' OR 1=1 --" } });
      await completed(fixture, key, response);
      assert.deepStrictEqual(await peek(fixture, key), { status: 'completed', fingerprint: 'fp', response });
      assert.deepStrictEqual(await peek(fixture, key, 'other'), { status: 'completed', fingerprint: 'fp', response });
    });

    test('should not keep a success whose transaction rolled back', async (fixture) => {
      const key = id();
      await inTransaction(
        fixture.uow,
        async () => {
          await fixture.store.claim(key, 'fp', 1_000);
          await fixture.store.complete(key, 'fp', ok(1), 60_000);
        },
        false,
      );
      assert.deepStrictEqual(await peek(fixture, key), { status: 'claimed' });
    });

    test('should keep a failure result although its transaction rolled back', async (fixture) => {
      const key = id();
      const refused = fail('insufficient_stock', { available: 2 });
      await inTransaction(
        fixture.uow,
        async () => {
          await fixture.store.claim(key, 'fp', 1_000);
          await fixture.store.complete(key, 'fp', refused, 60_000);
        },
        false,
      );
      assert.deepStrictEqual(await peek(fixture, key), { status: 'completed', fingerprint: 'fp', response: refused });
    });

    test('should run a key anew after its record expired (TTL)', async (fixture) => {
      const key = id();
      await completed(fixture, key, ok(1), 5_000);
      fixture.clock.advance(4_999);
      assert.equal((await peek(fixture, key)).status, 'completed');
      fixture.clock.advance(2);
      assert.equal((await peek(fixture, key)).status, 'claimed');
      await completed(fixture, key, ok(2));
      const replay = await peek(fixture, key);
      assert.deepStrictEqual(
        replay.status === 'completed' && replay.response,
        ok(2),
        'the new result replaces the old',
      );
    });

    test('should reap expired records, keeping live ones', async (fixture) => {
      const live = id(),
        expired = id();
      await completed(fixture, live, ok(1), 100_000);
      await completed(fixture, expired, ok(1), 10);
      fixture.clock.advance(50);
      assert.equal(await fixture.store.reap(), 1);
      assert.equal((await peek(fixture, live)).status, 'completed');
      assert.equal((await peek(fixture, expired)).status, 'claimed');
    });

    test('should keep scopes apart: the same key in two scopes is two records', async (fixture) => {
      const a = id('tenant-a\u001fu'),
        b = { scope: 'tenant-b\u001fu', key: a.key };
      await completed(fixture, a, ok('a'));
      assert.deepStrictEqual(await peek(fixture, b), { status: 'claimed' });
    });

    test('should let one of many concurrent sends run, the others see its result', async (fixture) => {
      const key = id();
      let runs = 0;
      const send = () =>
        inTransaction(fixture.uow, async () => {
          const claim = await fixture.store.claim(key, 'fp', 5_000);
          if (claim.status !== 'claimed') return claim.status;
          runs++;
          await fixture.store.complete(key, 'fp', ok('once'), 60_000);
          return claim.status;
        });
      await Promise.all(Array.from({ length: 10 }, send));
      assert.equal(runs, 1);
      assert.deepStrictEqual(await peek(fixture, key), {
        status: 'completed',
        fingerprint: 'fp',
        response: ok('once'),
      });
    });
  });
}
