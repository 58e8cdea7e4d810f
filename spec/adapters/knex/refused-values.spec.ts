// A value the database refuses (out of range, too long, not of the column's type) is a `validation` failure with
// nothing written, on PGlite and on Postgres: never an exception answered 500.
import 'reflect-metadata';
import { Container, inject, injectable } from 'inversify';
import type { Knex } from 'knex';
import * as v from 'valibot';
import { KnexAuditStore, KnexUnitOfWork, knexModule, tables } from '../../../adapters/knex/index.js';
import { memoryBusModule } from '../../../adapters/memory/index.js';
import {
  Command,
  Event,
  TOKENS,
  createMediator,
  handles,
  ok,
  type Context,
  type Mediator,
} from '../../../lib/core/index.js';
import { recommendedStack, rule } from '../../../middleware/index.js';
import { dropSchema, freshSchema, postgres, sharedPglite } from '../../support/db.js';
import { expect } from '../../support/helpers.js';

class Recorded extends Event(v.object({ n: v.number() })) {}

/** The schema lets through what the columns cannot hold: the database is the last line. */
class RecordThing extends Command(v.object({ n: v.number(), label: v.string(), day: v.string() }))<{ id: number }> {}

function refusedValuesOn(name: string, open: () => Promise<Knex | undefined>) {
  describe(`a value the database refuses, on ${name}`, () => {
    let db: Knex;
    let things: string;
    let mediator: Mediator;
    let audit: KnexAuditStore;
    let t: ReturnType<typeof tables>;
    const count = async (table: string) => Number((await db(table).count({ n: '*' }))[0]!.n);

    before(async function () {
      const found = await open();
      if (!found) return this.skip();
      db = found;
      const options = await freshSchema(db);
      t = tables(options);
      things = `${options.schema}.things`;
      await db.schema.withSchema(options.schema).createTable('things', (table) => {
        table.increments('id');
        table.integer('n').notNullable();
        table.string('label', 5).notNullable();
        table.date('day').notNullable();
      });

      @handles(RecordThing)
      @injectable()
      class RecordHandler {
        constructor(@inject(KnexUnitOfWork) private readonly uow: KnexUnitOfWork) {}
        async handle(cmd: RecordThing, ctx: Context) {
          const trx = await this.uow.db();
          const [row] = await trx(things).insert({ n: cmd.n, label: cmd.label, day: cmd.day }).returning('id');
          ctx.publish(new Recorded({ n: cmd.n }));
          return ok({ id: (row as { id: number }).id });
        }
      }
      const container = new Container();
      container.load(knexModule({ knex: db, ...options }), memoryBusModule());
      mediator = createMediator(container, {
        handlers: [RecordHandler],
        middleware: recommendedStack({ rules: [rule(RecordThing, () => true)] }),
      });
      audit = container.get<KnexAuditStore>(TOKENS.AuditStore);
    });
    after(async () => {
      if (things) await dropSchema(db, things.split('.')[0]!);
    });

    const cases = [
      { what: 'a number past the column', input: { n: 2 ** 31, label: 'zq', day: '2026-01-01' }, says: /out of range/ },
      { what: 'a text too long', input: { n: 1, label: 'zqzqzqzq', day: '2026-01-01' }, says: /too long/ },
      { what: 'a text that is no date', input: { n: 1, label: 'zq', day: 'soon' }, says: /not valid/ },
      { what: 'a date out of range', input: { n: 1, label: 'zq', day: '2026-13-45' }, says: /date or time/ },
    ];
    for (const [index, { what, input, says }] of cases.entries()) {
      it(`answers ${what} with a validation failure, writes nothing, audits it, and runs a fix under the key`, async () => {
        const before = { things: await count(things), outbox: await count(t.outbox), idem: await count(t.idempotency) };
        const key = `refused-${index}-${Date.now()}`;
        const result = await mediator.send(RecordThing.from(input), { idempotencyKey: key });
        expect(result.ok).to.equal(false);
        if (result.ok) return;
        expect(result.failure.kind).to.equal('validation');
        expect(result.failure.message)
          .to.match(says)
          .and.match(/SQLSTATE 22/)
          .and.match(/nothing was written/);
        expect(result.failure.message, 'no bound value leaks into the message').not.to.include('zq');
        expect(await count(things)).to.equal(before.things);
        expect(await count(t.outbox)).to.equal(before.outbox);
        expect(await count(t.idempotency), 'no idempotency record: the key stays free').to.equal(before.idem);
        await audit.seal();
        const [last] = await audit.list({ limit: 1, order: 'desc' });
        expect(last).to.include({ type: 'RecordThing', outcome: 'validation' });

        const fixed = await mediator.send(RecordThing.from({ n: 1, label: 'ok', day: '2026-01-01' }), {
          idempotencyKey: key,
        });
        expect(fixed.ok, JSON.stringify(fixed)).to.equal(true);
        expect(await count(things)).to.equal(before.things + 1);
        expect(await count(t.outbox)).to.equal(before.outbox + 1);
      });
    }

    it('leaves a mistake of the code (division by zero) an exception', async () => {
      const uow = new KnexUnitOfWork(db);
      const thrown = (sql: string) =>
        db.raw(sql).then(
          () => expect.fail(`${sql} succeeded`),
          (error: unknown) => error,
        );
      expect(uow.refusedValue(await thrown('SELECT 1 / 0'))).to.equal(undefined);
      expect(uow.refusedValue(await thrown('SELECT 2147483648::int'))?.message).to.match(/out of range/);
    });
  });
}

describe('refused values', () => {
  refusedValuesOn('PGlite', sharedPglite);
  refusedValuesOn('Postgres', postgres);
});
