// The AuditStore contract: per-tenant hash chains, transactional appends, listing.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { verifyAuditChain } from '../../lib/audit-chain.js';
import type { AuditEntry, AuditStore, UnitOfWork } from '../../lib/ports.js';
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

  t.describe(`AuditStore contract: ${name}`, () => {
    test('should chain appends per tenant from the genesis hash', async ({ store }) => {
      const a = tenant();
      const first = await store.append(entry(a));
      const second = await store.append(entry(a, { outcome: 'domain', code: 'insufficient_funds' }));
      assertIncludes(first, { seq: 1, prevHash: '0'.repeat(64) });
      assertIncludes(second, { seq: 2, prevHash: first.hash, code: 'insufficient_funds' });
      assert.deepStrictEqual(verifyAuditChain(await store.list({ tenant: a, order: 'asc' })), { ok: true, count: 2 });
    });

    test('should return records that round-trip exactly (the chain verifies from stored data)', async ({ store }) => {
      const a = tenant();
      const written = await store.append(entry(a, { replayed: true, actor: null }));
      const [read] = await store.list({ tenant: a });
      assert.deepStrictEqual(read, written);
    });

    test('should keep tenants on separate chains', async ({ store }) => {
      const a = tenant(),
        b = tenant();
      await store.append(entry(a));
      const firstOfB = await store.append(entry(b));
      assert.equal(firstOfB.seq, 1);
    });

    test('should drop an append whose transaction rolled back and keep a committed one', async ({ store, uow }) => {
      const a = tenant();
      await uow.transaction(
        () => store.append(entry(a, { type: 'RolledBack' })),
        () => false,
      );
      await uow.transaction(
        () => store.append(entry(a, { type: 'Committed' })),
        () => true,
      );
      const rows = await store.list({ tenant: a });
      assert.deepStrictEqual(
        rows.map((r) => r.type),
        ['Committed'],
      );
      assert.equal(verifyAuditChain(rows).ok, true);
    });

    test('should serialize concurrent appends of one tenant into one unbroken chain', async ({ store }) => {
      const a = tenant();
      await Promise.all(Array.from({ length: 50 }, (_, i) => store.append(entry(a, { type: `T${i}` }))));
      const rows = await store.list({ tenant: a, order: 'asc' });
      assert.deepStrictEqual(
        rows.map((r) => r.seq),
        Array.from({ length: 50 }, (_, i) => i + 1),
      );
      assert.deepStrictEqual(verifyAuditChain(rows), { ok: true, count: 50 });
    });

    test('should list newest first with a limit', async ({ store }) => {
      const a = tenant();
      for (const type of ['A', 'B', 'C']) await store.append(entry(a, { type }));
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
