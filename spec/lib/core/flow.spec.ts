// Flows on Postgres: steps in one transaction, each step's result the next's input; the first failure rolls back
// the steps before it; idempotency covers the whole flow; each step is audited under the flow's request id.
import 'reflect-metadata';
import { expectTypeOf } from 'expect-type';
import { Container, inject, injectable } from 'inversify';
import type { Knex } from 'knex';
import * as v from 'valibot';
import { KnexAuditStore, KnexUnitOfWork, knexModule } from '../../../adapters/knex/index.js';
import { memoryBusModule } from '../../../adapters/memory/index.js';
import {
  Command,
  TOKENS,
  createMediator,
  fail,
  flow,
  handles,
  ok,
  type FailureOf,
  type Mediator,
  type ResultOf,
} from '../../../lib/core/index.js';
import { recommendedStack, rule } from '../../../middleware/index.js';
import { dropSchema, freshSchema, postgres } from '../../support/db.js';
import { expect } from '../../support/helpers.js';

class Reserve extends Command(v.object({ sku: v.string(), qty: v.number() }))<{ reservationId: string; qty: number }> {}
class Charge extends Command(v.object({ reservationId: v.string(), qty: v.number() }))<
  { reservationId: string; amount: number },
  'card_declined'
> {}
class Ship extends Command(v.object({ reservationId: v.string(), amount: v.number() }))<
  { shipmentId: string },
  'no_courier'
> {}

const Checkout = flow('Checkout', [Reserve, Charge, Ship]);

describe('flow() on Postgres', function () {
  this.timeout(20_000);
  let db: Knex;
  let schema: string;
  let mediator: Mediator;
  let audit: KnexAuditStore;
  const rows = async (table: string) => Number((await db(`${schema}.${table}`).count({ n: '*' }))[0]!.n);

  before(async function () {
    const found = await postgres();
    if (!found) return this.skip();
    db = found;
    const options = await freshSchema(db);
    schema = options.schema;
    for (const table of ['reservations', 'charges', 'shipments']) {
      await db.schema.withSchema(schema).createTable(table, (t) => {
        t.increments('id');
        t.text('reservation_id');
        t.integer('amount');
      });
    }
    const into = (uow: KnexUnitOfWork, table: string, row: object) =>
      uow.db().then(async (trx) => (await trx(`${schema}.${table}`).insert(row).returning('id'))[0].id as number);

    @handles(Reserve)
    @injectable()
    class ReserveHandler {
      constructor(@inject(KnexUnitOfWork) private readonly uow: KnexUnitOfWork) {}
      async handle(cmd: Reserve) {
        const id = await into(this.uow, 'reservations', { amount: cmd.qty });
        return ok({ reservationId: `r-${id}`, qty: cmd.qty });
      }
    }
    @handles(Charge)
    @injectable()
    class ChargeHandler {
      constructor(@inject(KnexUnitOfWork) private readonly uow: KnexUnitOfWork) {}
      async handle(cmd: Charge) {
        await into(this.uow, 'charges', { reservation_id: cmd.reservationId, amount: cmd.qty * 30 });
        return ok({ reservationId: cmd.reservationId, amount: cmd.qty * 30 });
      }
    }
    @handles(Ship)
    @injectable()
    class ShipHandler {
      constructor(@inject(KnexUnitOfWork) private readonly uow: KnexUnitOfWork) {}
      async handle(cmd: Ship) {
        if (cmd.amount > 100) return fail('no_courier', { amount: cmd.amount });
        const id = await into(this.uow, 'shipments', { reservation_id: cmd.reservationId, amount: cmd.amount });
        return ok({ shipmentId: `s-${id}` });
      }
    }
    const container = new Container();
    container.load(knexModule({ knex: db, ...options }), memoryBusModule());
    const clerkOnly = (actor: { roles?: readonly string[] } | undefined) => actor?.roles?.includes('clerk') === true;
    mediator = createMediator(container, {
      handlers: [ReserveHandler, ChargeHandler, ShipHandler, Checkout.handler],
      middleware: recommendedStack({
        rules: [
          rule(Checkout, () => true),
          rule(Reserve, () => true),
          rule(Charge, (ctx) => clerkOnly(ctx.meta.actor)),
          rule(Ship, () => true),
        ],
      }),
    });
    audit = container.get<KnexAuditStore>(TOKENS.AuditStore);
  });
  after(async () => {
    if (schema) await dropSchema(db, schema);
  });

  const clerk = { actor: { id: 'carol', roles: ['clerk'] } };

  it("types the flow from its steps: the first's input, the last's result, every step's codes", () => {
    expectTypeOf<ResultOf<InstanceType<typeof Checkout>>>().toEqualTypeOf<{ shipmentId: string }>();
    expectTypeOf<FailureOf<InstanceType<typeof Checkout>>>().toEqualTypeOf<'card_declined' | 'no_courier'>();
    // @ts-expect-error Reserve cannot take Charge's result ({ reservationId, amount }) as its input ({ sku, qty })
    flow('Backwards', [Charge, Reserve]);
    expect(mediator.describe(Checkout)).to.deep.include({
      handler: 'CheckoutHandler',
      steps: ['Reserve', 'Charge', 'Ship'],
    });
  });

  it('feeds each step the previous result, commits all of them, and audits each under the flow’s request id', async () => {
    const before = { reservations: await rows('reservations'), shipments: await rows('shipments') };
    const result = await mediator.send(Checkout.from({ sku: 'tea', qty: 2 }), { ...clerk, requestId: 'flow-ok' });
    expect(result).to.deep.include({ ok: true });
    expect(result.ok && result.value.shipmentId).to.match(/^s-\d+$/);
    expect(await rows('reservations')).to.equal(before.reservations + 1);
    expect(await rows('shipments')).to.equal(before.shipments + 1);
    await audit.seal();
    const records = (await audit.list()).filter((r) => r.requestId === 'flow-ok');
    expect(records.map((r) => `${r.type}:${r.outcome}`).sort()).to.deep.equal([
      'Charge:ok',
      'Checkout:ok',
      'Reserve:ok',
      'Ship:ok',
    ]);
  });

  it('returns the first failure and rolls back the steps before it', async () => {
    const before = { reservations: await rows('reservations'), charges: await rows('charges') };
    const result = await mediator.send(Checkout.from({ sku: 'tea', qty: 5 }), { ...clerk, requestId: 'flow-fail' });
    expect(result.ok).to.equal(false);
    if (result.ok) return;
    expect(result.failure).to.deep.include({ kind: 'domain', code: 'no_courier', details: { amount: 150 } });
    expect(await rows('reservations'), 'step 1 rolled back').to.equal(before.reservations);
    expect(await rows('charges'), 'step 2 rolled back').to.equal(before.charges);
    await audit.seal();
    const records = (await audit.list()).filter((r) => r.requestId === 'flow-fail');
    expect(records.map((r) => `${r.type}:${r.outcome}`).sort()).to.deep.equal(['Checkout:domain', 'Ship:domain']);
  });

  it('replays the whole flow by its key without running a step again', async () => {
    const first = await mediator.send(Checkout.from({ sku: 'tea', qty: 1 }), { ...clerk, idempotencyKey: 'flow-k1' });
    expect(first).to.deep.include({ ok: true });
    const counts = { reservations: await rows('reservations'), shipments: await rows('shipments') };
    const again = await mediator.send(Checkout.from({ sku: 'tea', qty: 1 }), { ...clerk, idempotencyKey: 'flow-k1' });
    expect(again).to.deep.equal({ ...first, replayed: true });
    expect({ reservations: await rows('reservations'), shipments: await rows('shipments') }).to.deep.equal(counts);
  });

  it('stops at a step the policy denies, writing nothing', async () => {
    const before = await rows('reservations');
    const vic = { actor: { id: 'vic', roles: [] }, requestId: 'flow-denied' };
    const result = await mediator.send(Checkout.from({ sku: 'tea', qty: 1 }), vic);
    expect(result).to.deep.include({ ok: false });
    expect(!result.ok && result.failure.kind).to.equal('forbidden');
    expect(await rows('reservations'), 'Reserve ran, then rolled back with the flow').to.equal(before);
    await audit.seal();
    const records = (await audit.list()).filter((r) => r.requestId === 'flow-denied');
    expect(records.map((r) => `${r.type}:${r.outcome}`).sort()).to.deep.equal([
      'Charge:forbidden',
      'Checkout:forbidden',
    ]);
  });

  it('validates each step’s input: a first step given a bad body fails validation with paths', async () => {
    const result = await mediator.send(Checkout.from({ sku: 'tea', qty: 'two' }), clerk);
    expect(!result.ok && result.failure.kind).to.equal('validation');
    expect(
      !result.ok && result.failure.kind === 'validation' && result.failure.issues.map((i) => i.path),
    ).to.deep.equal(['qty']);
  });
});
