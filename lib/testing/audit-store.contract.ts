// The AuditStore contract: appends that commit (or, for failures, survive) with their transaction, per-tenant hash
// chains once sealed, listing.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { verifyAuditChain } from '../audit/chain.js';
import type { AuditEntry, AuditStore, UnitOfWork } from '../core/ports.js';
import { assertIncludes, withFixture, type TestApi } from './harness.js';

/** What the AuditStore contract runs against, made fresh for every case. */
export interface AuditStoreFixture {
  readonly store: AuditStore;
  /** The unit of work whose transactions `store.append` joins. */
  readonly uow: UnitOfWork;
  close(): Promise<void>;
}

/**
 * Registers the AuditStore contract for an adapter.
 * @example
 * runAuditStoreContract({ describe, it }, 'memory', async () => {
 *   const uow = new MemoryUnitOfWork();
 *   return { uow, store: new MemoryAuditStore(uow), close: async () => {} };
 * });
 */
export function runAuditStoreContract(t: TestApi, name: string, make: () => Promise<AuditStoreFixture>): void {
  const tenant = () => `t-${randomUUID()}`;
  const entry = (forTenant: string, extra: Partial<AuditEntry> = {}): AuditEntry => ({
    id: randomUUID(),
    at: new Date().toISOString(),
    tenant: forTenant,
    actor: 'alice',
    type: 'Deposit',
    requestId: randomUUID(),
    outcome: 'ok',
    payload: { amount: 3, note: 'Zoë ✓', nested: { list: [1, null] } },
    ...extra,
  });
  const test = (title: string, body: (fixture: AuditStoreFixture) => Promise<void>) =>
    t.it(title, () => withFixture(make, body));

  /** Seals, then lists the tenant's chain oldest first: everything committed before `seal()` is in it. */
  const chainOf = async (store: AuditStore, forTenant: string) => {
    await store.seal?.();
    return store.list({ tenant: forTenant, order: 'asc' });
  };
  const commit = (uow: UnitOfWork, work: () => Promise<void>) => uow.transaction(work, () => true);

  t.describe(`AuditStore contract: ${name}`, () => {
    test('should chain committed appends per tenant from the genesis hash, once sealed', async ({ store, uow }) => {
      const a = tenant();
      await commit(uow, () => store.append(entry(a, { type: 'First' })));
      await commit(uow, () => store.append(entry(a, { outcome: 'domain', code: 'insufficient_funds' })));
      const [first, second] = await chainOf(store, a);
      assertIncludes(first!, { seq: 1, prevHash: '0'.repeat(64), type: 'First' });
      assertIncludes(second!, { seq: 2, prevHash: first!.hash, code: 'insufficient_funds' });
      assert.deepStrictEqual(verifyAuditChain(await store.list({ tenant: a, order: 'asc' })), { ok: true, count: 2 });
    });

    test('should return records that round-trip exactly (the chain verifies from stored data)', async ({
      store,
      uow,
    }) => {
      const a = tenant();
      const written = entry(a, { replayed: true, actor: null });
      await commit(uow, () => store.append(written));
      const [read] = await chainOf(store, a);
      assert.ok(read, 'the record was sealed');
      const { seq, prevHash, hash, ...rest } = read;
      assert.deepStrictEqual(rest, written);
      assert.deepStrictEqual({ seq, prevHash }, { seq: 1, prevHash: '0'.repeat(64) });
      assert.match(hash, /^[0-9a-f]{64}$/);
    });

    test("should keep a failure's reason in its record, covered by the chain", async ({ store, uow }) => {
      const a = tenant();
      const denied = entry(a, { outcome: 'forbidden', reason: 'No policy rule for Deposit — "deny" by default ✓' });
      await uow.transaction(
        () => store.append(denied),
        () => false,
      );
      await commit(uow, () => store.append(entry(a, { type: 'Allowed' })));
      const [first, second] = await chainOf(store, a);
      assert.ok(first && second, 'both records were sealed');
      const { seq, prevHash, hash, ...rest } = first;
      assert.deepStrictEqual(rest, denied);
      assert.equal('reason' in second, false, 'a record without a reason has no reason field');
      assert.deepStrictEqual(verifyAuditChain([first, second]), { ok: true, count: 2 });
      assert.deepStrictEqual(
        verifyAuditChain([{ ...first, reason: 'Allowed by the rule' }, second]),
        { ok: false, index: 0, reason: 'hash does not match the record (it was edited)' },
        'an edited reason breaks the chain',
      );
      assert.deepStrictEqual({ seq, prevHash }, { seq: 1, prevHash: '0'.repeat(64) });
      assert.match(hash, /^[0-9a-f]{64}$/);
    });

    test('should write an append made outside any transaction at once', async ({ store }) => {
      const a = tenant();
      await store.append(entry(a, { type: 'Alone' }));
      assert.deepStrictEqual(
        (await chainOf(store, a)).map((r) => r.type),
        ['Alone'],
      );
    });

    test('should keep tenants on separate chains', async ({ store, uow }) => {
      const a = tenant(),
        b = tenant();
      await commit(uow, () => store.append(entry(a)));
      await commit(uow, () => store.append(entry(b)));
      await commit(uow, () => store.append(entry(a)));
      assert.deepStrictEqual(
        (await chainOf(store, a)).map((r) => r.seq),
        [1, 2],
      );
      const [firstOfB] = await chainOf(store, b);
      assertIncludes(firstOfB!, { seq: 1, prevHash: '0'.repeat(64) });
    });

    test("should drop an 'ok' append whose transaction rolled back and keep a committed one", async ({
      store,
      uow,
    }) => {
      const a = tenant();
      await uow.transaction(
        () => store.append(entry(a, { type: 'RolledBack' })),
        () => false,
      );
      await assert.rejects(
        uow.transaction(
          async () => {
            await store.append(entry(a, { type: 'Threw' }));
            throw new Error('boom');
          },
          () => true,
        ),
        /boom/,
      );
      await commit(uow, () => store.append(entry(a, { type: 'Committed' })));
      const rows = await chainOf(store, a);
      assert.deepStrictEqual(
        rows.map((r) => r.type),
        ['Committed'],
      );
      assert.equal(verifyAuditChain(rows).ok, true);
    });

    test('should keep a failure record (outcome not ok) when its transaction rolls back', async ({ store, uow }) => {
      const a = tenant();
      await uow.transaction(
        () => store.append(entry(a, { type: 'Denied', outcome: 'forbidden' })),
        () => false,
      );
      await assert.rejects(
        uow.transaction(
          async () => {
            await store.append(entry(a, { type: 'Crashed', outcome: 'error' }));
            throw new Error('boom');
          },
          () => true,
        ),
        /boom/,
      );
      const rows = await chainOf(store, a);
      assert.deepStrictEqual(
        rows.map((r) => [r.type, r.outcome]),
        [
          ['Denied', 'forbidden'],
          ['Crashed', 'error'],
        ],
      );
      assert.deepStrictEqual(verifyAuditChain(rows), { ok: true, count: 2 });
    });

    test('should chain concurrent transactions of one tenant into one unbroken chain', async ({ store, uow }) => {
      const a = tenant();
      await Promise.all(
        Array.from({ length: 50 }, (_, i) => commit(uow, () => store.append(entry(a, { type: `T${i}` })))),
      );
      const rows = await chainOf(store, a);
      assert.deepStrictEqual(
        rows.map((r) => r.seq),
        Array.from({ length: 50 }, (_, i) => i + 1),
      );
      assert.deepStrictEqual(new Set(rows.map((r) => r.type)), new Set(Array.from({ length: 50 }, (_, i) => `T${i}`)));
      assert.deepStrictEqual(verifyAuditChain(rows), { ok: true, count: 50 });
    });

    test('should leave nothing to seal after seal(), and keep the chain when sealing again', async ({ store, uow }) => {
      const a = tenant();
      for (const type of ['A', 'B']) await commit(uow, () => store.append(entry(a, { type })));
      const before = await chainOf(store, a);
      assert.equal(await (store.seal?.() ?? Promise.resolve(0)), 0);
      await commit(uow, () => store.append(entry(a, { type: 'C' })));
      const after = await chainOf(store, a);
      assert.deepStrictEqual(after.slice(0, 2), before, 'sealed records never change');
      assertIncludes(after[2]!, { seq: 3, prevHash: before[1]!.hash, type: 'C' });
    });

    test('should list newest first with a limit', async ({ store, uow }) => {
      const a = tenant();
      for (const type of ['A', 'B', 'C']) await commit(uow, () => store.append(entry(a, { type })));
      await chainOf(store, a);
      assert.deepStrictEqual(
        (await store.list({ tenant: a, order: 'desc', limit: 2 })).map((r) => r.type),
        ['C', 'B'],
      );
      assert.deepStrictEqual(
        (await store.list({ tenant: a, order: 'asc' })).map((r) => r.type),
        ['A', 'B', 'C'],
      );
    });
  });
}
