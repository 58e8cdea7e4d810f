// The usecasecore CLI on Postgres: audit verify, and KnexAuditStore.verify() under concurrent appends and seals.
import { randomUUID } from 'node:crypto';
import { KnexAuditStore, KnexUnitOfWork } from '../../../adapters/knex/index.js';
import { UseCaseError } from '../../../lib/core/index.js';
import { chainHash, type AuditEntry } from '../../../lib/audit/index.js';
import { expect } from '../../support/helpers.js';
import { db, run, t, usePostgres, useTables } from './support.js';

describe('usecasecore CLI', function () {
  this.timeout(30_000);

  describe('on Postgres', () => {
    usePostgres();

    describe('with the tables', () => {
      useTables();

      describe('audit verify', () => {
        let records: Array<{ id: string; seq: number; hash: string }>;
        const entry = (tenant: string, n: number): AuditEntry => ({
          id: `${tenant}-${n}-${randomUUID().slice(0, 8)}`,
          at: new Date().toISOString(),
          tenant,
          actor: 'alice',
          type: 'MoveInventory',
          requestId: `r-${n}`,
          outcome: 'ok',
          payload: { sku: 'A-1', quantity: n },
        });
        beforeEach(async () => {
          const store = new KnexAuditStore(new KnexUnitOfWork(db), t.audit, t.auditHeads);
          for (let n = 1; n <= 3; n++) await store.append(entry('acme', n));
          for (let n = 1; n <= 2; n++) await store.append(entry('globex', n));
          expect(await store.seal()).to.equal(5);
          records = await store.list({ tenant: 'acme', order: 'asc' });
        });
        const verify = async (...args: string[]) => {
          const { code, stdout } = await run('audit', 'verify', '--json', ...args);
          return { code, result: JSON.parse(stdout) };
        };

        it('should exit 0 when every chain is intact', async () => {
          const human = await run('audit', 'verify');
          expect(human).to.include({ code: 0, stdout: 'Audit chains intact: 5 records of 2 tenants\n' });
          expect(await verify('--tenant', 'globex')).to.deep.equal({
            code: 0,
            result: { ok: true, tenants: 1, records: 2, pending: 0, problems: [] },
          });
        });

        it('should count records not sealed yet as pending, never as a break', async () => {
          const store = new KnexAuditStore(new KnexUnitOfWork(db), t.audit, t.auditHeads);
          await store.append(entry('acme', 4));
          await store.append(entry('initech', 1));
          const human = await run('audit', 'verify');
          expect(human).to.include({
            code: 0,
            stdout: 'Audit chains intact: 5 records of 3 tenants (2 not sealed yet, not checked)\n',
          });
          expect(await verify('--tenant', 'initech')).to.deep.equal({
            code: 0,
            result: { ok: true, tenants: 1, records: 0, pending: 1, problems: [] },
          });
          await store.seal();
          expect(await verify()).to.deep.include({ code: 0 });
          expect((await verify()).result).to.include({ records: 7, pending: 0 });
        });

        it('should exit 1 naming the tenant, seq and id of an edited record', async () => {
          await db(t.audit)
            .where({ tenant: 'acme', seq: 2 })
            .update({ payload: JSON.stringify({ sku: 'A-1', quantity: 200 }) });
          const human = await run('audit', 'verify');
          expect(human.code).to.equal(1);
          expect(human.stdout)
            .to.match(/^Audit chain broken in 1 tenant:$/m)
            .and.match(
              new RegExp(`^acme +2 +${records[1]!.id} +hash does not match the record \\(it was edited\\)$`, 'm'),
            );
          expect((await verify()).result.problems).to.deep.equal([
            { tenant: 'acme', seq: 2, id: records[1]!.id, reason: 'hash does not match the record (it was edited)' },
          ]);
          expect((await verify('--tenant', 'globex')).code, 'the other tenant is intact').to.equal(0);
        });

        it('should exit 1 naming the record after a deleted middle record', async () => {
          await db(t.audit).where({ tenant: 'acme', seq: 2 }).delete();
          const { code, result } = await verify();
          expect(code).to.equal(1);
          expect(result.problems).to.deep.equal([
            {
              tenant: 'acme',
              seq: 3,
              id: records[2]!.id,
              reason: 'seq 2 is missing (a record was removed or reordered)',
            },
          ]);
        });

        it("should exit 1 when the last record was deleted, from the tenant's head row", async () => {
          await db(t.audit).where({ tenant: 'acme', seq: 3 }).delete();
          const { code, result } = await verify('--tenant', 'acme');
          expect(code).to.equal(1);
          expect(result.problems).to.deep.equal([
            {
              tenant: 'acme',
              seq: 2,
              id: records[1]!.id,
              reason: 'the head is at seq 3: the records after this one were deleted',
            },
          ]);
        });

        it('should exit 1 for a --tenant with neither records nor a head row, not report it intact', async () => {
          const human = await run('audit', 'verify', '--tenant', 'ACME');
          expect(human.code).to.equal(1);
          expect(human.stdout).to.match(/^No audit records or head for tenant "ACME" — check the name/);
          const { code, result } = await verify('--tenant', 'nobody');
          expect(code).to.equal(1);
          expect(result).to.deep.include({ ok: false, records: 0 });
          expect(result.problems).to.deep.equal([
            { tenant: 'nobody', seq: 0, id: null, reason: 'no audit records or head for tenant "nobody"' },
          ]);
        });

        it('should never report a break while another process appends and seals, and still catch tampering', async () => {
          const store = new KnexAuditStore(new KnexUnitOfWork(db), t.audit, t.auditHeads);
          let writing = true,
            appended = 0;
          const writer = (async () => {
            for (let n = 4; writing; n++, appended++) {
              await Promise.all([store.append(entry('acme', n)), store.append(entry(`new-${n % 5}`, n))]);
            }
          })();
          const sealer = (async () => {
            while (writing) {
              await store.seal();
              await new Promise((resolve) => setTimeout(resolve, 10));
            }
          })();
          const reports = [];
          try {
            for (const until = Date.now() + 1_500; Date.now() < until;) {
              reports.push(await store.verify({ pageSize: 2 }), await store.verify({ tenant: 'acme', pageSize: 2 }));
            }
          } finally {
            writing = false;
            await Promise.all([writer, sealer]);
          }
          expect(appended, 'the writer kept appending').to.be.above(20);
          expect(reports.flatMap((report) => report.problems)).to.deep.equal([]);
          expect(
            reports.map((report) => report.records),
            'the sealer kept sealing',
          ).to.satisfy((counts: number[]) => new Set(counts).size > 2);
          await store.seal();
          await db(t.audit).where({ tenant: 'acme', seq: 2 }).update({ actor: 'mallory' });
          expect((await store.verify({ pageSize: 2 })).problems).to.deep.equal([
            { tenant: 'acme', seq: 2, id: records[1]!.id, reason: 'hash does not match the record (it was edited)' },
          ]);
        });

        it('should refuse a pageSize that is not a whole number ≥ 1 (0 would never end)', async () => {
          const store = new KnexAuditStore(new KnexUnitOfWork(db), t.audit, t.auditHeads);
          for (const pageSize of [0, -1, 1.5, Number.NaN]) {
            await expect(store.verify({ pageSize }), String(pageSize)).to.be.rejectedWith(UseCaseError, /pageSize/);
          }
          expect((await store.verify({ pageSize: 1 })).records).to.equal(5);
        });

        it('should exit 1 naming an inserted record, even one whose hash was forged to fit the chain', async () => {
          const forged = { ...entry('acme', 4), seq: 4 };
          const last = records[2]!;
          await db(t.audit).insert({
            tenant: 'acme',
            seq: 4,
            id: forged.id,
            at: forged.at,
            actor: forged.actor,
            type: forged.type,
            request_id: forged.requestId,
            outcome: forged.outcome,
            payload: JSON.stringify(forged.payload),
            prev_hash: last.hash,
            hash: chainHash(last.hash, 4, forged),
          });
          const { code, result } = await verify();
          expect(code).to.equal(1);
          expect(result.problems).to.deep.equal([
            { tenant: 'acme', seq: 4, id: forged.id, reason: 'the head is at seq 3: this record was inserted' },
          ]);
        });
      });
    });
  });
});
