// The AuditStore contract: per-tenant hash chains, transactional appends, listing.
import { randomUUID } from 'node:crypto';
import { verifyAuditChain, type AuditEntry, type AuditStore, type UnitOfWork } from '../../lib/index.js';
import { expect } from '../helpers.js';

/** Runs the AuditStore contract against an adapter. */
export function auditStoreContract(name: string, make: () => Promise<{ store: AuditStore; uow: UnitOfWork; close(): Promise<void> }>): void {
  describe(`AuditStore contract: ${name}`, () => {
    let store: AuditStore, uow: UnitOfWork, close: () => Promise<void>;
    before(async () => ({ store, uow, close } = await make()));
    after(() => close());
    const tenant = () => `t-${randomUUID()}`;
    const entry = (t: string, extra: Partial<AuditEntry> = {}): AuditEntry => ({
      id: randomUUID(), at: new Date().toISOString(), tenant: t, actor: 'alice', type: 'Deposit', requestId: randomUUID(),
      outcome: 'ok', payload: { amount: 3, note: 'Zoë ✓', nested: { list: [1, null] } }, ...extra,
    });

    it('should chain appends per tenant from the genesis hash', async () => {
      const t = tenant();
      const first = await store.append(entry(t));
      const second = await store.append(entry(t, { outcome: 'domain', code: 'insufficient_funds' }));
      expect(first).to.include({ seq: 1, prevHash: '0'.repeat(64) });
      expect(second).to.include({ seq: 2, prevHash: first.hash, code: 'insufficient_funds' });
      expect(verifyAuditChain(await store.list({ tenant: t, order: 'asc' }))).to.deep.equal({ ok: true, count: 2 });
    });

    it('should return records that round-trip exactly (the chain verifies from stored data)', async () => {
      const t = tenant();
      const written = await store.append(entry(t, { replayed: true, actor: null }));
      const [read] = await store.list({ tenant: t });
      expect(read).to.deep.equal(written);
    });

    it('should keep tenants on separate chains', async () => {
      const a = tenant(), b = tenant();
      await store.append(entry(a));
      const firstOfB = await store.append(entry(b));
      expect(firstOfB.seq).to.equal(1);
    });

    it('should drop an append whose transaction rolled back and keep a committed one', async () => {
      const t = tenant();
      await uow.transaction(() => store.append(entry(t, { type: 'RolledBack' })), () => false);
      await uow.transaction(() => store.append(entry(t, { type: 'Committed' })), () => true);
      const rows = await store.list({ tenant: t });
      expect(rows.map((r) => r.type)).to.deep.equal(['Committed']);
      expect(verifyAuditChain(rows).ok).to.equal(true);
    });

    it('should serialize concurrent appends of one tenant into one unbroken chain', async () => {
      const t = tenant();
      await Promise.all(Array.from({ length: 50 }, (_, i) => store.append(entry(t, { type: `T${i}` }))));
      const rows = await store.list({ tenant: t, order: 'asc' });
      expect(rows.map((r) => r.seq)).to.deep.equal(Array.from({ length: 50 }, (_, i) => i + 1));
      expect(verifyAuditChain(rows)).to.deep.equal({ ok: true, count: 50 });
    });

    it('should list newest first with a limit', async () => {
      const t = tenant();
      for (const type of ['A', 'B', 'C']) await store.append(entry(t, { type }));
      expect((await store.list({ tenant: t, order: 'desc', limit: 2 })).map((r) => r.type)).to.deep.equal(['C', 'B']);
      expect((await store.list({ tenant: t, order: 'asc' })).map((r) => r.type)).to.deep.equal(['A', 'B', 'C']);
    });
  });
}
