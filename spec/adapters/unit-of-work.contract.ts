// The UnitOfWork contract: commit, rollback, savepoints, no lost update. Every adapter runs it.
import type { UnitOfWork } from '../../lib/index.js';
import { expect } from '../helpers.js';

/** A tiny transactional table each adapter provides for the contract (memory map, SQL table, …). */
export interface Probe {
  /** Reads a value in the ambient transaction; `lock` takes a row lock where the adapter can. */
  read(key: string, lock?: boolean): Promise<number | undefined>;
  write(key: string, value: number): Promise<void>;
}

/** Runs the UnitOfWork contract against an adapter. */
export function unitOfWorkContract(name: string, make: () => Promise<{ uow: UnitOfWork; probe: Probe; close(): Promise<void> }>): void {
  describe(`UnitOfWork contract: ${name}`, () => {
    let uow: UnitOfWork, probe: Probe, close: () => Promise<void>;
    let n = 0;
    const key = () => `k${++n}-${Math.random().toString(36).slice(2)}`;
    before(async () => ({ uow, probe, close } = await make()));
    after(() => close());

    it('should commit when shouldCommit says so', async () => {
      const k = key();
      await uow.transaction(() => probe.write(k, 1).then(() => 'yes'), () => true);
      expect(await probe.read(k)).to.equal(1);
    });

    it('should roll back when shouldCommit says no, and return the value', async () => {
      const k = key();
      const value = await uow.transaction(() => probe.write(k, 1).then(() => 'no'), () => false);
      expect(value).to.equal('no');
      expect(await probe.read(k)).to.equal(undefined);
    });

    it('should roll back and rethrow when the work throws', async () => {
      const k = key();
      await expect(uow.transaction(async () => { await probe.write(k, 1); throw new Error('work failed'); }, () => true)).to.be.rejectedWith('work failed');
      expect(await probe.read(k)).to.equal(undefined);
    });

    it('should see its own writes inside the transaction', async () => {
      const k = key();
      const seen = await uow.transaction(async () => { await probe.write(k, 5); return probe.read(k); }, () => false);
      expect(seen).to.equal(5);
    });

    it('should roll back a nested scope alone (savepoint) and keep the outer writes', async () => {
      const outer = key(), inner = key();
      await uow.transaction(async () => {
        await probe.write(outer, 1);
        await uow.transaction(() => probe.write(inner, 2), () => false);
        await expect(uow.transaction(async () => { await probe.write(inner, 3); throw new Error('inner'); }, () => true)).to.be.rejectedWith('inner');
      }, () => true);
      expect(await probe.read(outer)).to.equal(1);
      expect(await probe.read(inner)).to.equal(undefined);
    });

    it('should undo a committed nested scope when the outer transaction rolls back', async () => {
      const outer = key(), inner = key();
      await uow.transaction(async () => {
        await probe.write(outer, 1);
        await uow.transaction(() => probe.write(inner, 2), () => true);
      }, () => false);
      expect(await probe.read(outer)).to.equal(undefined);
      expect(await probe.read(inner)).to.equal(undefined);
    });

    it('should lose no update when concurrent transactions read-modify-write one row', async () => {
      const k = key();
      await uow.transaction(() => probe.write(k, 0), () => true);
      const increment = () => uow.transaction(async () => {
        const current = (await probe.read(k, true)) ?? 0;
        await new Promise((resolve) => setImmediate(resolve));
        await probe.write(k, current + 1);
      }, () => true);
      await Promise.all(Array.from({ length: 10 }, increment));
      expect(await probe.read(k)).to.equal(10);
    });

    it('should classify plain errors as neither retryable nor unavailable', () => {
      expect(uow.isRetryable(new Error('x'))).to.equal(false);
      expect(uow.isUnavailable(new Error('x'))).to.equal(false);
    });
  });
}
