// The audit chain sealed after commit, on a real Postgres: no hot head row, commit order, verify under load, tampering.
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import type { Knex } from 'knex';
import { KnexAuditStore, KnexUnitOfWork, tables, type Tables } from '../../../adapters/knex/index.js';
import {
  auditSealer,
  chainAfter,
  verifyAuditChain,
  type AuditEntry,
  type AuditRecord,
} from '../../../lib/audit/index.js';
import { dropSchema, freshSchema, postgres } from '../../support/db.js';
import { expect } from '../../support/helpers.js';

const entry = (tenant: string, type: string, extra: Partial<AuditEntry> = {}): AuditEntry => ({
  id: randomUUID(),
  at: new Date().toISOString(),
  tenant,
  actor: 'alice',
  type,
  requestId: randomUUID(),
  outcome: 'ok',
  payload: { type, note: 'Zoë ✓' },
  ...extra,
});

/** Rejects with `what` when `work` has not settled within `ms` (a wait on a lock would otherwise hang the case). */
function within<T>(ms: number, what: string, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
  });
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}

describe('KnexAuditStore: sealed after commit (Postgres)', function () {
  this.timeout(30_000);
  let db: Knex;
  let schema: string;
  let t: Tables;
  let store: KnexAuditStore;
  let uow: KnexUnitOfWork;

  before(async function () {
    const found = await postgres();
    if (!found) return this.skip();
    db = found;
  });
  beforeEach(async function () {
    if (!db) return this.skip();
    const options = await freshSchema(db);
    schema = options.schema;
    t = tables(options);
    uow = new KnexUnitOfWork(db);
    store = new KnexAuditStore(uow, t.audit, t.auditHeads);
  });
  afterEach(async () => {
    if (db && schema) await dropSchema(db, schema);
  });

  /** A store whose appends go, at once, into the open transaction `trx` (its unit of work's root is `trx`). */
  const storeIn = (trx: Knex.Transaction) => new KnexAuditStore(new KnexUnitOfWork(trx), t.audit, t.auditHeads);
  const chain = (tenant: string) => store.list({ tenant, order: 'asc' });

  it('should let 20 open transactions of one tenant append while the others append and commit (no head lock)', async () => {
    const tenant = 'acme';
    let appended = 0;
    let allAppended!: () => void;
    const barrier = new Promise<void>((resolve) => (allAppended = resolve));
    const writers = Array.from({ length: 20 }, (_, i) =>
      db.transaction(async (trx) => {
        await storeIn(trx).append(entry(tenant, `T${i}`)); // the INSERT has run: this transaction holds it open
        if (++appended === 20) allAppended();
        await barrier; // commits only once all 20 have appended: impossible if an append waited on another's commit
      }),
    );
    await within(10_000, 'twenty appends of one tenant, each in its open transaction', Promise.all(writers));
    expect(await store.seal()).to.equal(20);
    const records = await chain(tenant);
    expect(verifyAuditChain(records)).to.deep.equal({ ok: true, count: 20 });
    expect(new Set(records.map((r) => r.type))).to.have.length(20);
    expect((await store.verify()).ok).to.equal(true);
  });

  it('should commit 20 concurrent sends of one tenant through the unit of work, then seal them into one chain', async () => {
    const tenant = 'acme';
    await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        uow.transaction(
          () => store.append(entry(tenant, `U${i}`)),
          () => true,
        ),
      ),
    );
    expect(await store.seal()).to.equal(20);
    expect(verifyAuditChain(await chain(tenant))).to.deep.equal({ ok: true, count: 20 });
  });

  it('should not seal a record whose transaction is open, nor hold back those committed after it', async () => {
    const tenant = 'acme';
    let release!: (commit: boolean) => void;
    const decided = new Promise<boolean>((resolve) => (release = resolve));
    let inserted!: () => void;
    const insertedOpen = new Promise<void>((resolve) => (inserted = resolve));
    const open = db.transaction(async (trx) => {
      await storeIn(trx).append(entry(tenant, 'Open'));
      inserted();
      if (!(await decided)) throw new Error('rolled back on purpose');
    });
    await insertedOpen;
    await store.append(entry(tenant, 'B'));
    await store.append(entry(tenant, 'C'));
    expect(await store.seal(), 'B and C: the open one is invisible').to.equal(2);
    expect((await chain(tenant)).map((r) => r.type)).to.deep.equal(['B', 'C']);
    expect((await store.verify()).pending, 'the open record is not even pending yet').to.equal(0);

    release(true);
    await open;
    expect((await store.verify({ tenant })).pending).to.equal(1);
    await store.append(entry(tenant, 'D'));
    expect(await store.seal()).to.equal(2);
    const records = await chain(tenant);
    expect(
      records.map((r) => r.type),
      'commit order',
    ).to.deep.equal(['B', 'C', 'Open', 'D']);
    expect(verifyAuditChain(records)).to.deep.equal({ ok: true, count: 4 });
    expect(await store.verify()).to.deep.include({ ok: true, records: 4, pending: 0 });
  });

  it('should never seal a record whose transaction rolled back', async () => {
    const tenant = 'acme';
    await db
      .transaction(async (trx) => {
        await storeIn(trx).append(entry(tenant, 'Gone'));
        throw new Error('roll back');
      })
      .catch(() => undefined);
    await store.append(entry(tenant, 'Kept'));
    expect(await store.seal()).to.equal(1);
    expect((await chain(tenant)).map((r) => r.type)).to.deep.equal(['Kept']);
  });

  it('should list sealed records only, and seal in batches (one sealer at a time)', async () => {
    for (let i = 0; i < 7; i++) await store.append(entry(i % 2 ? 'a' : 'b', `R${i}`));
    expect(await store.list()).to.deep.equal([]);
    const [first, second] = await Promise.all([store.seal({ batchSize: 2 }), store.seal({ batchSize: 2 })]);
    expect(first + second, 'each record sealed once').to.equal(7);
    expect(verifyAuditChain(await chain('a'))).to.deep.equal({ ok: true, count: 3 });
    expect(verifyAuditChain(await chain('b'))).to.deep.equal({ ok: true, count: 4 });
    expect(await store.list()).to.have.length(7);
  });

  it('should never report a break while writers append and a sealer seals', async () => {
    const sealer = auditSealer(store, { everyMs: 20 });
    let writing = true,
      appended = 0;
    const writers = Array.from({ length: 8 }, (_, w) =>
      (async () => {
        for (let n = 0; writing; n++) {
          const tenant = w % 2 ? 'acme' : `t${w}`;
          await uow.transaction(
            () => store.append(entry(tenant, `W${w}-${n}`, n % 5 === 4 ? { outcome: 'forbidden' } : {})),
            () => n % 7 !== 6, // some roll back: their 'ok' records vanish, their failure records stay
          );
          appended++;
        }
      })(),
    );
    const reports = [];
    try {
      for (const until = Date.now() + 2_000; Date.now() < until;) {
        reports.push(await store.verify({ pageSize: 7 }), await store.verify({ tenant: 'acme', pageSize: 3 }));
      }
    } finally {
      writing = false;
      await Promise.all(writers);
      await sealer.stop();
    }
    expect(appended, 'the writers kept writing').to.be.above(100);
    expect(reports.flatMap((report) => report.problems)).to.deep.equal([]);
    expect(new Set(reports.map((report) => report.records)).size, 'the sealer kept sealing').to.be.above(2);
    await store.seal();
    const final = await store.verify();
    expect(final).to.deep.include({ ok: true, pending: 0 });
    expect(final.records).to.equal(Number((await db(t.audit).count({ n: '*' }))[0]!.n));
  });

  it('should chain 1,000 records that two processes append and seal at once, and name the first tampered one', async () => {
    const writer = fileURLToPath(new URL('./audit-writer.ts', import.meta.url));
    const url = process.env.DATABASE_URL!;
    const writers = [0, 1].map(() =>
      spawn(process.execPath, ['--import', 'tsx', writer, url, schema, 'acme', '500'], { stdio: 'inherit' }),
    );
    const codes = await Promise.all(writers.map(async (child) => (await once(child, 'exit'))[0] as number));
    expect(codes).to.deep.equal([0, 0]);
    await store.seal(); // what committed after the writers' last runs
    expect(await store.verify()).to.deep.include({ ok: true, tenants: 1, records: 1_000, pending: 0 });
    const records = await chain('acme');
    expect(new Set(records.map((r) => r.actor)).size, 'both processes wrote').to.equal(2);
    expect(verifyAuditChain(records)).to.deep.include({ ok: true, count: 1_000 });

    // Reorder two records (swap their places in the chain): the first of them no longer fits its place.
    const [a, b] = [records[499]!, records[500]!];
    await db.transaction(async (trx) => {
      await trx(t.audit).where({ id: a.id }).update({ seq: -1 });
      await trx(t.audit).where({ id: b.id }).update({ seq: a.seq, prev_hash: a.prevHash, hash: a.hash });
      await trx(t.audit).where({ id: a.id }).update({ seq: b.seq, prev_hash: b.prevHash, hash: b.hash });
    });
    expect((await store.verify()).problems).to.deep.equal([
      { tenant: 'acme', seq: 500, id: b.id, reason: 'hash does not match the record (it was edited)' },
    ]);
  });

  describe('verify() after sealing', () => {
    let records: AuditRecord[];
    beforeEach(async () => {
      for (let i = 1; i <= 4; i++) await store.append(entry('acme', `R${i}`));
      await store.append(entry('globex', 'G1'));
      await store.seal();
      records = await chain('acme');
    });
    const problems = async () => (await store.verify()).problems;

    it('should catch an edited record', async () => {
      await db(t.audit).where({ id: records[1]!.id }).update({ actor: 'mallory' });
      expect(await problems()).to.deep.equal([
        { tenant: 'acme', seq: 2, id: records[1]!.id, reason: 'hash does not match the record (it was edited)' },
      ]);
    });

    it('should catch a deleted middle record', async () => {
      await db(t.audit).where({ id: records[1]!.id }).delete();
      expect(await problems()).to.deep.equal([
        { tenant: 'acme', seq: 3, id: records[2]!.id, reason: 'seq 2 is missing (a record was removed or reordered)' },
      ]);
    });

    it('should catch a deleted last record', async () => {
      await db(t.audit).where({ id: records[3]!.id }).delete();
      expect(await problems()).to.deep.equal([
        {
          tenant: 'acme',
          seq: 3,
          id: records[2]!.id,
          reason: 'the head is at seq 4: the records after this one were deleted',
        },
      ]);
    });

    it('should catch a record unsealed to hide it (its seq set back to NULL)', async () => {
      await db(t.audit).where({ id: records[1]!.id }).update({ seq: null, prev_hash: null, hash: null });
      expect(await problems()).to.deep.equal([
        { tenant: 'acme', seq: 3, id: records[2]!.id, reason: 'seq 2 is missing (a record was removed or reordered)' },
      ]);
    });

    it('should catch an inserted record, at the end or in the middle, even with a hash forged to fit', async () => {
      const row = (record: AuditRecord) => ({
        tenant: record.tenant,
        seq: record.seq,
        id: record.id,
        at: record.at,
        actor: record.actor,
        type: record.type,
        request_id: record.requestId,
        outcome: record.outcome,
        payload: JSON.stringify(record.payload),
        prev_hash: record.prevHash,
        hash: record.hash,
      });
      const atEnd = chainAfter(records[3], entry('acme', 'Forged'));
      await db(t.audit).insert(row(atEnd));
      expect(await problems()).to.deep.equal([
        { tenant: 'acme', seq: 5, id: atEnd.id, reason: 'the head is at seq 4: this record was inserted' },
      ]);
      await db(t.audit).where({ id: atEnd.id }).delete();
      // In the middle: make room after seq 2, then insert a record chained after it.
      await db(t.audit).where({ tenant: 'acme' }).andWhere('seq', '>', 2).increment('seq', 100);
      await db(t.audit).where({ tenant: 'acme' }).andWhere('seq', '>', 100).decrement('seq', 99);
      const between = chainAfter(records[1], entry('acme', 'Between'));
      await db(t.audit).insert(row(between));
      expect(await problems()).to.deep.equal([
        { tenant: 'acme', seq: 4, id: records[2]!.id, reason: 'prevHash does not match the previous record' },
      ]);
    });
  });
});
