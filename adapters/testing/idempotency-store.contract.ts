// The IdempotencyStore contract: claims, completion in the business transaction, leases, fencing, TTL, reaping.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { UseCaseError } from '../../lib/errors.js';
import type { Claim, IdempotencyKey, IdempotencyStore, UnitOfWork } from '../../lib/ports.js';
import { ok } from '../../lib/result.js';
import { ManualClock } from './clock.js';
import { withFixture, type TestApi } from './harness.js';

/** What the IdempotencyStore contract runs against, made fresh for every case. */
export interface IdempotencyStoreFixture {
  readonly store: IdempotencyStore;
  /** The unit of work whose transactions `store.complete` joins. */
  readonly uow: UnitOfWork;
  close(): Promise<void>;
}

/**
 * Registers the IdempotencyStore contract for an adapter. `make` receives a fresh `ManualClock` per case, and the
 * store it returns must read the time from that clock only (leases and TTLs are moved by hand).
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
  const commit = (uow: UnitOfWork, work: () => Promise<void>) => uow.transaction(work, () => true);
  const token = (claim: Claim): string => {
    if (claim.status !== 'claimed') assert.fail(`expected a claim, got ${JSON.stringify(claim)}`);
    return claim.token;
  };

  t.describe(`IdempotencyStore contract: ${name}`, () => {
    test('should claim a fresh key and report a live claim as in progress with its fingerprint', async ({ store }) => {
      const key = id();
      assert.equal((await store.claim(key, 'fp', 1_000)).status, 'claimed');
      assert.deepStrictEqual(await store.claim(key, 'other', 1_000), { status: 'in_progress', fingerprint: 'fp' });
    });

    test('should replay a result completed in a committed transaction, byte-equal', async ({ store, uow }) => {
      const key = id();
      const owner = token(await store.claim(key, 'fp', 1_000));
      const response = ok({ name: 'Zoë ✓', nested: { list: [1, 2.5, null], text: "' OR 1=1 --" } });
      await commit(uow, () => store.complete(key, owner, response, 60_000));
      assert.deepStrictEqual(await store.claim(key, 'fp', 1_000), { status: 'completed', fingerprint: 'fp', response });
    });

    test('should not keep a completion whose transaction rolled back', async ({ store, uow }) => {
      const key = id();
      const owner = token(await store.claim(key, 'fp', 1_000));
      await uow.transaction(
        () => store.complete(key, owner, ok(1), 60_000),
        () => false,
      );
      assert.equal((await store.claim(key, 'fp', 1_000)).status, 'in_progress');
      await store.release(key, owner);
    });

    test('should fence off a completion by a token that no longer owns the key', async ({ store, uow, clock }) => {
      const key = id();
      const first = token(await store.claim(key, 'fp', 1_000));
      clock.advance(1_001);
      const second = token(await store.claim(key, 'fp', 1_000));
      await assert.rejects(
        commit(uow, () => store.complete(key, first, ok('late'), 60_000)),
        (error) => UseCaseError.is(error) && error.kind === 'claim_lost',
        'a completion by the expired claim must throw UseCaseError("claim_lost")',
      );
      await commit(uow, () => store.complete(key, second, ok('second'), 60_000));
      const replay = await store.claim(key, 'fp', 1_000);
      assert.deepStrictEqual(replay.status === 'completed' ? replay.response : replay, ok('second'));
    });

    test('should let a released key be claimed again and ignore a release by another token', async ({ store }) => {
      const key = id();
      const owner = token(await store.claim(key, 'fp', 1_000));
      await store.release(key, 'not-the-owner');
      assert.equal((await store.claim(key, 'fp', 1_000)).status, 'in_progress');
      await store.release(key, owner);
      assert.equal((await store.claim(key, 'fp2', 1_000)).status, 'claimed');
    });

    test('should run a key anew after its record expired (TTL)', async ({ store, uow, clock }) => {
      const key = id();
      const owner = token(await store.claim(key, 'fp', 1_000));
      await commit(uow, () => store.complete(key, owner, ok(1), 5_000));
      clock.advance(4_999);
      assert.equal((await store.claim(key, 'fp', 1_000)).status, 'completed');
      clock.advance(2);
      assert.equal((await store.claim(key, 'fp', 1_000)).status, 'claimed');
    });

    test('should reap expired records and stale claims, keeping live ones', async ({ store, uow, clock }) => {
      const live = id(),
        expired = id(),
        stale = id();
      for (const [key, ttl] of [
        [live, 100_000],
        [expired, 10],
      ] as const) {
        const owner = token(await store.claim(key, 'fp', 1_000));
        await commit(uow, () => store.complete(key, owner, ok(1), ttl));
      }
      await store.claim(stale, 'fp', 10);
      clock.advance(50);
      const reaped = await store.reap();
      assert.ok(reaped >= 2, `reap() should count the expired record and the stale claim, returned ${reaped}`);
      assert.equal((await store.claim(live, 'fp', 1_000)).status, 'completed');
      assert.equal((await store.claim(expired, 'fp', 1_000)).status, 'claimed');
    });

    test('should keep scopes apart: the same key in two scopes is two records', async ({ store }) => {
      const a = id('tenant-a\u001fu'),
        b = { scope: 'tenant-b\u001fu', key: a.key };
      assert.equal((await store.claim(a, 'fp', 1_000)).status, 'claimed');
      assert.equal((await store.claim(b, 'fp', 1_000)).status, 'claimed');
    });

    test('should grant exactly one of many concurrent claims', async ({ store }) => {
      const key = id();
      const claims = await Promise.all(Array.from({ length: 20 }, () => store.claim(key, 'fp', 1_000)));
      assert.equal(claims.filter((c) => c.status === 'claimed').length, 1);
      assert.equal(claims.filter((c) => c.status === 'in_progress').length, 19);
    });
  });
}
