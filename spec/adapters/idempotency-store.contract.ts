// The IdempotencyStore contract: claims, completion in the business transaction, leases, fencing, TTL, reaping.
import { UseCaseError, ok, type IdempotencyStore, type UnitOfWork } from '../../lib/index.js';
import { FakeClock, expect } from '../helpers.js';

/** Runs the IdempotencyStore contract against an adapter (its clock must be the given FakeClock). */
export function idempotencyStoreContract(name: string, make: (clock: FakeClock) => Promise<{ store: IdempotencyStore; uow: UnitOfWork; close(): Promise<void> }>): void {
  describe(`IdempotencyStore contract: ${name}`, () => {
    const clock = new FakeClock();
    let store: IdempotencyStore, uow: UnitOfWork, close: () => Promise<void>;
    let n = 0;
    const id = (scope = 'tenant\u001factor') => ({ scope, key: `key-${++n}-${Math.random().toString(36).slice(2)}` });
    const commit = (work: () => Promise<void>) => uow.transaction(work, () => true);
    before(async () => ({ store, uow, close } = await make(clock)));
    after(() => close());

    it('should claim a fresh key and report a live claim as in progress with its fingerprint', async () => {
      const key = id();
      expect(await store.claim(key, 'fp', 1_000)).to.have.property('status', 'claimed');
      expect(await store.claim(key, 'other', 1_000)).to.deep.equal({ status: 'in_progress', fingerprint: 'fp' });
    });

    it('should replay a result completed in a committed transaction, byte-equal', async () => {
      const key = id();
      const claim = await store.claim(key, 'fp', 1_000);
      if (claim.status !== 'claimed') return expect.fail('expected a claim');
      const response = ok({ name: 'Zoë ✓', nested: { list: [1, 2.5, null], text: "' OR 1=1 --" } });
      await commit(() => store.complete(key, claim.token, response, 60_000));
      const again = await store.claim(key, 'fp', 1_000);
      expect(again).to.deep.equal({ status: 'completed', fingerprint: 'fp', response });
    });

    it('should not keep a completion whose transaction rolled back', async () => {
      const key = id();
      const claim = await store.claim(key, 'fp', 1_000);
      if (claim.status !== 'claimed') return expect.fail('expected a claim');
      await uow.transaction(() => store.complete(key, claim.token, ok(1), 60_000), () => false);
      expect(await store.claim(key, 'fp', 1_000)).to.have.property('status', 'in_progress');
      await store.release(key, claim.token);
    });

    it('should fence off a completion by a token that no longer owns the key', async () => {
      const key = id();
      const first = await store.claim(key, 'fp', 1_000);
      if (first.status !== 'claimed') return expect.fail('expected a claim');
      clock.advance(1_001);
      const second = await store.claim(key, 'fp', 1_000);
      expect(second).to.have.property('status', 'claimed');
      const late = commit(() => store.complete(key, first.token, ok('late'), 60_000));
      await expect(late).to.be.rejectedWith(UseCaseError).and.eventually.have.property('kind', 'claim_lost');
      if (second.status !== 'claimed') return expect.fail('expected a claim');
      await commit(() => store.complete(key, second.token, ok('second'), 60_000));
      expect(await store.claim(key, 'fp', 1_000)).to.have.nested.property('response.value', 'second');
    });

    it('should let a released key be claimed again and ignore a release by another token', async () => {
      const key = id();
      const claim = await store.claim(key, 'fp', 1_000);
      if (claim.status !== 'claimed') return expect.fail('expected a claim');
      await store.release(key, 'not-the-owner');
      expect(await store.claim(key, 'fp', 1_000)).to.have.property('status', 'in_progress');
      await store.release(key, claim.token);
      expect(await store.claim(key, 'fp2', 1_000)).to.have.property('status', 'claimed');
    });

    it('should run a key anew after its record expired (TTL)', async () => {
      const key = id();
      const claim = await store.claim(key, 'fp', 1_000);
      if (claim.status !== 'claimed') return expect.fail('expected a claim');
      await commit(() => store.complete(key, claim.token, ok(1), 5_000));
      clock.advance(4_999);
      expect(await store.claim(key, 'fp', 1_000)).to.have.property('status', 'completed');
      clock.advance(2);
      expect(await store.claim(key, 'fp', 1_000)).to.have.property('status', 'claimed');
    });

    it('should reap expired records and stale claims, keeping live ones', async () => {
      const live = id(), expired = id(), stale = id();
      for (const [key, ttl] of [[live, 100_000], [expired, 10]] as const) {
        const c = await store.claim(key, 'fp', 1_000);
        if (c.status !== 'claimed') return expect.fail('expected a claim');
        await commit(() => store.complete(key, c.token, ok(1), ttl));
      }
      await store.claim(stale, 'fp', 10);
      clock.advance(50);
      expect(await store.reap()).to.be.at.least(2);
      expect(await store.claim(live, 'fp', 1_000)).to.have.property('status', 'completed');
      expect(await store.claim(expired, 'fp', 1_000)).to.have.property('status', 'claimed');
    });

    it('should keep scopes apart: the same key in two scopes is two records', async () => {
      const a = id('tenant-a\u001fu'), b = { scope: 'tenant-b\u001fu', key: a.key };
      expect(await store.claim(a, 'fp', 1_000)).to.have.property('status', 'claimed');
      expect(await store.claim(b, 'fp', 1_000)).to.have.property('status', 'claimed');
    });

    it('should grant exactly one of many concurrent claims', async () => {
      const key = id();
      const claims = await Promise.all(Array.from({ length: 20 }, () => store.claim(key, 'fp', 1_000)));
      expect(claims.filter((c) => c.status === 'claimed')).to.have.length(1);
      expect(claims.filter((c) => c.status === 'in_progress')).to.have.length(19);
    });
  });
}
