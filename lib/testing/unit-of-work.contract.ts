// The UnitOfWork contract: commit, rollback, savepoints, no lost update. Every adapter runs it.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { UnitOfWork } from '../core/ports.js';
import { withFixture, type TestApi } from './harness.js';

/** A tiny transactional table each adapter provides for the contract (memory map, SQL table, …). */
export interface Probe {
  /** Reads a value in the ambient transaction; `lock` takes a row lock where the adapter can. */
  read(key: string, lock?: boolean): Promise<number | undefined>;
  write(key: string, value: number): Promise<void>;
}

/** What the UnitOfWork contract runs against, made fresh for every case. */
export interface UnitOfWorkFixture {
  readonly uow: UnitOfWork;
  readonly probe: Probe;
  close(): Promise<void>;
}

/**
 * Registers the UnitOfWork contract for an adapter: `make` gives a unit of work and a probe table it governs.
 * @example
 * runUnitOfWorkContract({ describe, it }, 'memory', async () => {
 *   const uow = new MemoryUnitOfWork(), table = new TransactionalMap<string, number>(uow);
 *   const probe = { read: async (k: string) => table.get(k), write: async (k: string, v: number) => table.set(k, v) };
 *   return { uow, probe, close: async () => {} };
 * });
 */
export function runUnitOfWorkContract(t: TestApi, name: string, make: () => Promise<UnitOfWorkFixture>): void {
  const key = () => `k-${randomUUID()}`;
  const test = (title: string, body: (fixture: UnitOfWorkFixture) => Promise<void>) =>
    t.it(title, () => withFixture(make, body));

  t.describe(`UnitOfWork contract: ${name}`, () => {
    test('should commit when shouldCommit says so', async ({ uow, probe }) => {
      const k = key();
      await uow.transaction(
        () => probe.write(k, 1).then(() => 'yes'),
        () => true,
      );
      assert.equal(await probe.read(k), 1);
    });

    test('should roll back when shouldCommit says no, and return the value', async ({ uow, probe }) => {
      const k = key();
      const value = await uow.transaction(
        () => probe.write(k, 1).then(() => 'no'),
        () => false,
      );
      assert.equal(value, 'no');
      assert.equal(await probe.read(k), undefined);
    });

    test('should roll back and rethrow when the work throws', async ({ uow, probe }) => {
      const k = key();
      const failing = async () => {
        await probe.write(k, 1);
        throw new Error('work failed');
      };
      await assert.rejects(
        uow.transaction(failing, () => true),
        /work failed/,
      );
      assert.equal(await probe.read(k), undefined);
    });

    test('should see its own writes inside the transaction', async ({ uow, probe }) => {
      const k = key();
      const seen = await uow.transaction(
        async () => {
          await probe.write(k, 5);
          return probe.read(k);
        },
        () => false,
      );
      assert.equal(seen, 5);
    });

    test('should roll back a nested scope alone (savepoint) and keep the outer writes', async ({ uow, probe }) => {
      const outer = key(),
        inner = key();
      await uow.transaction(
        async () => {
          await probe.write(outer, 1);
          await uow.transaction(
            () => probe.write(inner, 2),
            () => false,
          );
          const failing = async () => {
            await probe.write(inner, 3);
            throw new Error('inner');
          };
          await assert.rejects(
            uow.transaction(failing, () => true),
            /inner/,
          );
        },
        () => true,
      );
      assert.equal(await probe.read(outer), 1);
      assert.equal(await probe.read(inner), undefined);
    });

    test('should undo a committed nested scope when the outer transaction rolls back', async ({ uow, probe }) => {
      const outer = key(),
        inner = key();
      await uow.transaction(
        async () => {
          await probe.write(outer, 1);
          await uow.transaction(
            () => probe.write(inner, 2),
            () => true,
          );
        },
        () => false,
      );
      assert.equal(await probe.read(outer), undefined);
      assert.equal(await probe.read(inner), undefined);
    });

    test('should lose no update when concurrent transactions read-modify-write one row', async ({ uow, probe }) => {
      const k = key();
      await uow.transaction(
        () => probe.write(k, 0),
        () => true,
      );
      const increment = () =>
        uow.transaction(
          async () => {
            const current = (await probe.read(k, true)) ?? 0;
            await new Promise((resolve) => setImmediate(resolve));
            await probe.write(k, current + 1);
          },
          () => true,
        );
      await Promise.all(Array.from({ length: 10 }, increment));
      assert.equal(await probe.read(k), 10);
    });

    test('should classify plain errors as neither retryable nor unavailable', async ({ uow }) => {
      assert.equal(uow.isRetryable(new Error('x')), false);
      assert.equal(uow.isUnavailable(new Error('x')), false);
    });
  });
}
