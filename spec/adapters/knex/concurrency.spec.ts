// Transactional truth on a real Postgres: concurrent sends, two processes, a killed process, a cut connection.
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { inject, injectable } from 'inversify';
import type { Knex } from 'knex';
import * as v from 'valibot';
import { KnexUnitOfWork, KnexAuditStore, tables } from '../../../adapters/knex/index.js';
import type { Container } from 'inversify';
import {
  Command,
  TOKENS,
  createMediator,
  handles,
  ok,
  withRules,
  type Context,
  type Handler,
  type Mediator,
} from '../../../lib/core/index.js';
import { verifyAuditChain } from '../../../lib/audit/index.js';
import type { RunningRelay } from '../../../lib/messaging/index.js';
import { everyone, policy, unitOfWork, validation } from '../../../middleware/index.js';
import { MoveInventory, ReceiveStock } from '../../../samples/inventory/index.js';
import { postgres } from '../../support/db.js';
import { expect } from '../../support/helpers.js';
import { spawnChild } from '../../support/processes.js';
import { createSchema, sampleOnPostgres } from '../../support/sample-db.js';

const CHILD = fileURLToPath(new URL('../../support/postgres-child.ts', import.meta.url));
const manager = { actor: { id: 'manager-1', roles: ['manager'] } };
const clerk = { actor: { id: 'clerk-1', roles: ['clerk'] } };

describe('Postgres: concurrency and faults', function () {
  this.timeout(60_000);
  let url: string;
  let schema: string;
  let admin: Knex;
  const opened: Array<{ db: Knex; container: Container }> = [];

  before(async function () {
    const found = await postgres();
    if (!found) return this.skip();
    admin = found;
    url = process.env.DATABASE_URL!;
    schema = `pgspec_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
    await createSchema(url, schema);
  });

  after(async () => {
    // Relays woken by the sends must stop before their pools close, or a late pass waits for a connection.
    await Promise.all(opened.map(({ container }) => container.get<RunningRelay>(TOKENS.Relay).stop()));
    await Promise.all(opened.map(({ db }) => db.destroy()));
    if (schema && admin) await admin.raw('DROP SCHEMA IF EXISTS ?? CASCADE', [schema]);
  });

  function sample(options: Parameters<typeof sampleOnPostgres>[2] = {}) {
    const s = sampleOnPostgres(url, schema, options);
    opened.push(s);
    return s;
  }

  const q = (sql: string, bindings: readonly unknown[] = []) =>
    admin.raw(sql.replaceAll('$schema', schema), bindings as never).then((r) => r.rows);
  const bins = async (productId: string) =>
    Object.fromEntries(
      (await q(`SELECT bin_id, qty FROM "$schema".sample_stock WHERE product_id = ?`, [productId])).map((r: any) => [
        r.bin_id,
        Number(r.qty),
      ]),
    );
  const count = async (sql: string, bindings: readonly unknown[] = []) => Number((await q(sql, bindings))[0].n);

  async function stock(mediator: Mediator, productId: string, binQty: Record<string, number>) {
    for (const [binId, qty] of Object.entries(binQty)) {
      const r = await mediator.send(ReceiveStock.from({ productId, binId, qty }), manager);
      expect(r.ok, JSON.stringify(r)).to.equal(true);
    }
  }

  /** A child process of ./child.ts on the spec's schema; its `waitFor` waits as long as a case may. */
  const child = (env: Record<string, string>) =>
    spawnChild(CHILD, { DATABASE_URL: url, SCHEMA: schema, ...env }, { stdin: 'ignore', timeoutMs: 60_000 });

  it('should run 50 parallel sends with one key from two processes exactly once (one effect, one audit success, one outbox row)', async () => {
    const { mediator } = sample();
    const productId = `p-${randomUUID()}`;
    await stock(mediator, productId, { A: 10 });
    const key = `key-${randomUUID()}`;
    const body = JSON.stringify({ productId, fromBinId: 'A', toBinId: 'B', qty: 4, reason: 'race' });
    const [one, two] = [
      child({ MODE: 'send', KEY: key, COUNT: '25', BODY: body }),
      child({ MODE: 'send', KEY: key, COUNT: '25', BODY: body }),
    ];
    const results = [
      ...JSON.parse((await one.waitFor(/^\[.*\]$/m))[0]),
      ...JSON.parse((await two.waitFor(/^\[.*\]$/m))[0]),
    ];
    expect(results).to.have.length(50);
    expect(
      results.filter((r) => r.ok && !r.replayed),
      'first runs',
    ).to.have.length(1);
    expect(
      results.every((r) => (r.ok && r.replayed) || (r.ok && !r.replayed) || r.kind === 'in_progress'),
      JSON.stringify(results),
    ).to.equal(true);
    expect(await bins(productId)).to.deep.equal({ A: 6, B: 4 });
    expect(
      await count(
        `SELECT count(*) n FROM "$schema".ucc_outbox WHERE type = 'inventory.moved' AND payload->>'productId' = ?`,
        [productId],
      ),
    ).to.equal(1);
    expect(
      await count(
        `SELECT count(*) n FROM "$schema".ucc_audit WHERE type = 'MoveInventory' AND outcome = 'ok' AND replayed IS NOT TRUE AND payload->>'productId' = ?`,
        [productId],
      ),
    ).to.equal(1);
  });

  it('should conserve stock under 200 concurrent random moves between 4 bins, with every outcome audited', async () => {
    const { mediator, container } = sample({ pool: 10 });
    const productId = `p-${randomUUID()}`;
    const binIds = ['A', 'B', 'C', 'D'];
    await stock(mediator, productId, { A: 20, B: 20, C: 20, D: 20 });
    const pick = () => binIds[Math.floor(Math.random() * binIds.length)]!;
    const results = await Promise.all(
      Array.from({ length: 200 }, () => {
        const from = pick();
        let to = pick();
        while (to === from) to = pick();
        return mediator.send(
          MoveInventory.from({
            productId,
            fromBinId: from,
            toBinId: to,
            qty: 1 + Math.floor(Math.random() * 8),
            reason: 'shuffle',
          }),
          clerk,
        );
      }),
    );
    const moved = results.filter((r) => r.ok).length;
    const short = results.filter(
      (r) => !r.ok && r.failure.kind === 'domain' && r.failure.code === 'insufficient_stock',
    ).length;
    expect(moved + short, JSON.stringify(results.find((r) => !r.ok && !(r.failure.kind === 'domain')))).to.equal(200);
    const after = await bins(productId);
    expect(Object.values(after).reduce((a, b) => a + b, 0)).to.equal(80);
    expect(Math.min(...Object.values(after))).to.be.at.least(0);
    const audited = await q(
      `SELECT outcome, code, count(*) n FROM "$schema".ucc_audit WHERE type = 'MoveInventory' AND payload->>'productId' = ? GROUP BY outcome, code`,
      [productId],
    );
    const byOutcome = Object.fromEntries(
      audited.map((r: any) => [`${r.outcome}${r.code ? `:${r.code}` : ''}`, Number(r.n)]),
    );
    expect(byOutcome).to.deep.equal({ ok: moved, ...(short > 0 ? { 'domain:insufficient_stock': short } : {}) });
    const store = new KnexAuditStore(container.get(KnexUnitOfWork), tables().audit, tables().auditHeads);
    await store.seal();
    const chain = await store.list({ tenant: 'default', order: 'asc' });
    expect(chain.length, 'every record sealed').to.equal(
      Number((await q(`SELECT count(*) n FROM "$schema".ucc_audit WHERE tenant = 'default'`))[0].n),
    );
    expect(verifyAuditChain(chain).ok).to.equal(true);
  });

  it('should let only one of two moves that are each valid alone but not together commit', async () => {
    const { mediator } = sample();
    const productId = `p-${randomUUID()}`;
    await stock(mediator, productId, { A: 10 });
    const move = (to: string) =>
      mediator.send(MoveInventory.from({ productId, fromBinId: 'A', toBinId: to, qty: 6, reason: 'both' }), clerk);
    const results = await Promise.all([move('B'), move('C')]);
    expect(results.filter((r) => r.ok)).to.have.length(1);
    expect(results.find((r) => !r.ok)).to.have.nested.property('failure.code', 'insufficient_stock');
    const after = await bins(productId);
    expect(after.A).to.equal(4);
    expect((after.B ?? 0) + (after.C ?? 0)).to.equal(6);
  });

  it('should make duplicates wait on a claim held by a process, then run once it is SIGKILLed (the claim dies with its transaction); in_progress at the lock timeout', async () => {
    const { mediator: impatient } = sample({ waitMs: 200 });
    const { mediator: patient } = sample({ waitMs: 20_000 });
    const productId = `p-${randomUUID()}`;
    await stock(patient, productId, { A: 10 });
    const key = `key-${randomUUID()}`;
    const body = { productId, fromBinId: 'A', toBinId: 'B', qty: 3, reason: 'killed' };
    const hung = child({ MODE: 'hang', KEY: key, BODY: JSON.stringify(body) });
    await hung.waitFor(/HANGING/);

    const send = (mediator: Mediator, qty = 3) =>
      mediator.send(MoveInventory.from({ ...body, qty }), { ...clerk, idempotencyKey: key });
    const started = Date.now();
    expect(await send(impatient)).to.have.nested.property('failure.kind', 'in_progress');
    expect(Date.now() - started, 'it waited for the lock timeout').to.be.at.least(150);
    expect(await send(impatient, 2), 'another payload in flight').to.have.nested.property(
      'failure.kind',
      'in_progress',
    );
    const waiting = send(patient); // blocks on the key until the hung transaction ends

    await hung.kill();
    expect(await waiting).to.deep.equal({ ok: true, value: { sourceQtyAfter: 7, destQtyAfter: 3 } });
    expect(await bins(productId), 'the killed send committed nothing; the waiting one its move').to.deep.equal({
      A: 7,
      B: 3,
    });
    expect(await send(patient)).to.deep.equal({
      ok: true,
      value: { sourceQtyAfter: 7, destQtyAfter: 3 },
      replayed: true,
    });
    expect(await send(patient, 2)).to.have.nested.property('failure.kind', 'idempotency_mismatch');
    expect(
      await count(
        `SELECT count(*) n FROM "$schema".ucc_outbox WHERE type = 'inventory.moved' AND payload->>'productId' = ?`,
        [productId],
      ),
    ).to.equal(1);
  });

  it('should answer unavailable when the connection is terminated mid-send, leave no partial rows, and recover', async () => {
    let cut = false;
    let uow: KnexUnitOfWork | undefined;
    // After the handler wrote its rows, another session kills this transaction's backend: the commit cannot happen.
    const terminate = withRules(async function terminate(_ctx: Context, next: () => Promise<any>) {
      const result = await next();
      if (cut) {
        cut = false;
        const pid = (await (await uow!.db()).raw('SELECT pg_backend_pid() AS pid')).rows[0].pid;
        await admin.raw('SELECT pg_terminate_backend(?)', [pid]);
      }
      return result;
    }, {});
    const { mediator, container } = sample({ inner: [terminate] });
    uow = container.get(KnexUnitOfWork);
    const productId = `p-${randomUUID()}`;
    await stock(mediator, productId, { A: 10 });
    cut = true;
    const first = await mediator.send(
      MoveInventory.from({ productId, fromBinId: 'A', toBinId: 'B', qty: 2, reason: 'cut' }),
      { ...clerk, idempotencyKey: `k-${randomUUID()}` },
    );
    expect(first).to.have.nested.property('failure.kind', 'unavailable');
    expect(await bins(productId)).to.deep.equal({ A: 10 });
    expect(
      await count(
        `SELECT count(*) n FROM "$schema".ucc_outbox WHERE type = 'inventory.moved' AND payload->>'productId' = ?`,
        [productId],
      ),
    ).to.equal(0);
    const audited = await q(
      `SELECT outcome FROM "$schema".ucc_audit WHERE type = 'MoveInventory' AND payload->>'productId' = ?`,
      [productId],
    );
    expect(audited.map((r: any) => r.outcome)).to.deep.equal(['unavailable']);
    const next = await mediator.send(
      MoveInventory.from({ productId, fromBinId: 'A', toBinId: 'B', qty: 2, reason: 'cut' }),
      clerk,
    );
    expect(next).to.deep.equal({ ok: true, value: { sourceQtyAfter: 8, destQtyAfter: 2 } });
  });

  it('should commit nothing of a send whose handler throws, and audit it as an error', async () => {
    const boom = withRules(async function boom(_ctx: Context, next: () => Promise<any>): Promise<never> {
      await next();
      throw new Error('handler blew up after writing');
    }, {});
    const { mediator } = sample({ inner: [boom] });
    const { mediator: plain } = sample();
    const productId = `p-${randomUUID()}`;
    await stock(plain, productId, { A: 10 });
    await expect(
      mediator.send(MoveInventory.from({ productId, fromBinId: 'A', toBinId: 'B', qty: 2, reason: 'x' }), clerk),
    ).to.be.rejectedWith('handler blew up');
    expect(await bins(productId)).to.deep.equal({ A: 10 });
    const audited = await q(
      `SELECT outcome FROM "$schema".ucc_audit WHERE type = 'MoveInventory' AND payload->>'productId' = ?`,
      [productId],
    );
    expect(audited.map((r: any) => r.outcome)).to.deep.equal(['error']);
  });

  describe('deadlocks', () => {
    class Swap extends Command(v.object({ first: v.string(), second: v.string() }))<{ attempts: number }> {}
    const loads: string[] = [];
    let barrier: { arrived: number; release?: () => void; all: Promise<void> } | undefined;

    @handles(Swap)
    @injectable()
    class SwapHandler implements Handler<Swap> {
      constructor(@inject(KnexUnitOfWork) private readonly uow: KnexUnitOfWork) {}
      async load(cmd: Swap) {
        loads.push(cmd.first);
        const db = await this.uow.db();
        await db('pg_swap').where({ id: cmd.first }).forUpdate();
        if (barrier && ++barrier.arrived <= 2) {
          if (barrier.arrived === 2) barrier.release!();
          await barrier.all;
        }
        await db('pg_swap').where({ id: cmd.second }).forUpdate();
      }
      async handle(cmd: Swap) {
        const db = await this.uow.db();
        await db('pg_swap').whereIn('id', [cmd.first, cmd.second]).increment('n', 1);
        return ok({ attempts: loads.filter((l) => l === cmd.first).length });
      }
    }

    it('should retry a deadlock victim, re-running load, so both sends commit', async () => {
      const { db, container } = sample();
      await db.schema.createTable('pg_swap', (t) => {
        t.text('id').primary();
        t.integer('n').notNullable();
      });
      await db('pg_swap').insert([
        { id: 'x', n: 0 },
        { id: 'y', n: 0 },
      ]);
      const mediator = createMediator(container, {
        handlers: [SwapHandler],
        middleware: [validation(), unitOfWork(), policy([everyone(Swap)])],
      });
      let release!: () => void;
      barrier = {
        arrived: 0,
        all: new Promise<void>((resolve) => {
          release = resolve;
        }),
      };
      barrier.release = release;
      const results = await Promise.all([
        mediator.send(new Swap({ first: 'x', second: 'y' })),
        mediator.send(new Swap({ first: 'y', second: 'x' })),
      ]);
      expect(
        results.every((r) => r.ok),
        JSON.stringify(results),
      ).to.equal(true);
      expect(loads.length, 'one load re-ran after the deadlock').to.equal(3);
      expect((await db('pg_swap').orderBy('id')).map((r) => r.n)).to.deep.equal([2, 2]);
    });
  });
});
