// RELIABILITY.md scenario 35 on Postgres and the CLI: hostile identifiers and values, bound and refused, never run.
import { randomUUID } from 'node:crypto';
import { KnexAuditStore, KnexOutbox, KnexUnitOfWork, tables } from '../../adapters/knex/index.js';
import { GetAuditLog } from '../../samples/audit/index.js';
import { GetInventory, MoveInventory } from '../../samples/inventory/index.js';
import { GetOrder } from '../../samples/orders/index.js';
import { expect } from '../support/helpers.js';
import {
  admin,
  carries,
  clerk,
  cli,
  keyRows,
  move,
  named,
  q,
  sample,
  schema,
  stock,
  url,
  usePostgresWorld,
  wire,
} from './postgres-world.js';

describe('RELIABILITY scenarios on Postgres, RabbitMQ and processes', function () {
  this.timeout(60_000);
  usePostgresWorld();

  describe('35 · hostile identifiers and values', () => {
    before(async () => {
      await admin.schema.withSchema(schema).createTable('scn_victim', (table) => table.text('id'));
    });
    const victimAlive = async () =>
      (
        await q(`SELECT 1 FROM information_schema.tables WHERE table_schema = ? AND table_name = 'scn_victim'`, [
          schema,
        ])
      ).length === 1;

    it('should send hostile text only as bound values, and store it literally', async () => {
      const { mediator } = sample();
      const productId = `p35-${randomUUID()}`;
      await stock(mediator, productId, { A: 10 });
      const drop = `DROP TABLE ${schema}.scn_victim`;
      const hostile = {
        reason: `x'); ${drop}; --`,
        actor: `a"; ${drop}; --`,
        tenant: `t' OR '1'='1`,
        key: `';${drop.replaceAll(' ', '-')};--`,
      };
      wire.log = [];
      const result = await mediator.send(move(productId, 1, hostile.reason), {
        actor: { id: hostile.actor, roles: ['clerk'] },
        tenant: hostile.tenant,
        idempotencyKey: hostile.key,
      });
      const sent = wire.log;
      wire.log = undefined;
      expect(result.ok, JSON.stringify(result)).to.equal(true);
      expect(sent.length).to.be.above(2);
      for (const [what, text] of Object.entries(hostile)) {
        expect(
          sent.filter((s) => s.text.includes(text)).map((s) => s.text),
          `${what} in a statement`,
        ).to.deep.equal([]);
        expect(
          carries(
            sent.flatMap((s) => s.values),
            text,
          ),
          `${what} among the values`,
        ).to.equal(true);
      }
      expect(await victimAlive()).to.equal(true);
      const [record] = await q(
        `SELECT actor, tenant, payload->>'reason' AS reason FROM "$schema".ucc_audit
         WHERE type = 'MoveInventory' AND payload->>'productId' = ?`,
        [productId],
      );
      expect(record).to.deep.equal({ actor: hostile.actor, tenant: hostile.tenant, reason: hostile.reason });
      expect(await keyRows(hostile.key)).to.equal(1);
    });

    it('should refuse objects, arrays and hostile ids, sorts or limits before any SQL', async () => {
      const { mediator } = sample();
      const drop = `'; DROP TABLE ${schema}.scn_victim; --`;
      const requests: Array<[string, object]> = [
        ['an object as a product id', GetInventory.from({ productId: { product_id: 'p' } })],
        ['an operator object as a product id', GetInventory.from({ productId: { $ne: '' } })],
        ['an array as a product id', GetInventory.from({ productId: ['a', 'b'] })],
        ['SQL as a product id', GetInventory.from({ productId: drop })],
        ['an object as an order id', GetOrder.from({ orderId: { order_id: randomUUID() } })],
        ['SQL as a limit', GetAuditLog.from({ limit: `1${drop}` })],
        ['an object as a limit', GetAuditLog.from({ limit: { $gt: '0' } })],
        [
          'an object as a bin id',
          MoveInventory.from({ productId: 'p', fromBinId: { a: 1 }, toBinId: 'B', qty: 1, reason: 'r' }),
        ],
      ];
      for (const [name, request] of requests) {
        wire.log = [];
        const result = await mediator.send(request as MoveInventory, clerk);
        const statements = wire.log.length;
        wire.log = undefined;
        expect(result, name).to.have.nested.property('failure.kind', 'validation');
        expect(statements, `${name}: statements sent`).to.equal(0);
      }
      expect(await victimAlive()).to.equal(true);
    });

    it("should keep the library's reads bound: objects match nothing, a hostile order is asc", async () => {
      const { mediator } = sample();
      await stock(mediator, `p35-${randomUUID()}`, { A: 1, B: 1 });
      const store = new KnexAuditStore(new KnexUnitOfWork(named('scn35')), tables().audit, tables().auditHeads);
      await store.seal();
      expect(await store.list({ tenant: 'default', limit: 1 })).to.have.length(1);
      const drop = `DROP TABLE ${schema}.scn_victim`;
      wire.log = [];
      const widened = [
        await store.list({ tenant: { $ne: '' } as never }),
        await store.list({ tenant: ['default'] as never }),
        await store.list({ tenant: `default' OR '1'='1` }),
      ];
      const sorted = await store.list({ tenant: 'default', order: `desc; ${drop}` as never, limit: 2 });
      const limited = await store.list({ tenant: 'default', limit: `1; ${drop}` as never });
      const outbox = new KnexOutbox(new KnexUnitOfWork(named('scn35')), tables().outbox);
      const retried = await outbox.retry([`x'); ${drop}; --`]);
      const sent = wire.log;
      wire.log = undefined;
      expect(
        widened.map((rows) => rows.length),
        'nothing matched',
      ).to.deep.equal([0, 0, 0]);
      expect(
        sorted.map((r) => r.seq),
        'ascending',
      ).to.deep.equal([1, 2]);
      expect(limited).to.have.length(1);
      expect(retried).to.deep.equal({ retried: [], notParked: [], missing: [`x'); ${drop}; --`] });
      expect(sent.filter((s) => /drop table|\$ne/i.test(s.text)).map((s) => s.text)).to.deep.equal([]);
      expect(sent.filter((s) => /order by "seq" desc/i.test(s.text))).to.deep.equal([]);
      expect(await victimAlive()).to.equal(true);
    });

    it('should refuse hostile --schema and --prefix in every CLI command, and bind a hostile tenant', async () => {
      // The CLI's sessions resolve unqualified names in the spec's schema: the payloads name a table they could drop.
      const hostileSchema = `scn35"; DROP TABLE scn_victim; --${randomUUID().slice(0, 6)}`;
      const prefix = `p'); DROP TABLE scn_victim; --_`;
      const env = { DATABASE_URL: url, PGOPTIONS: `-c search_path=${schema}` };
      const commands = [
        ['migrate'],
        ['outbox', 'status', '--json'],
        ['idempotency', 'reap', '--json'],
        ['outbox', 'purge', '--sent-before', '1d', '--json'],
        ['audit', 'verify'],
      ];
      const runs = await Promise.all(
        commands.flatMap((args) => [
          cli([...args, '--schema', hostileSchema], env),
          cli([...args, '--prefix', prefix], env),
        ]),
      );
      for (const [i, run] of runs.entries()) {
        const args = commands[Math.floor(i / 2)]!.join(' ');
        expect(run.code, `${args}: ${run.stderr}`).to.equal(2);
        expect(run.stderr, args).to.match(
          /(Schema|Table prefix) ".*" is not allowed — .*letters, digits and underscores/,
        );
        expect(run.stderr, args).to.contain(`Usage: usecasecore ${args.split(' --')[0]}`);
      }
      expect(await q(`SELECT 1 FROM information_schema.schemata WHERE schema_name = ?`, [hostileSchema])).to.deep.equal(
        [],
      );
      const verified = await cli(['audit', 'verify', '--schema', schema, '--tenant', `' OR '1'='1`], env);
      expect(verified.code, 'a hostile tenant matches no tenant').to.equal(1);
      expect(verified.stdout).to.contain(`No audit records or head for tenant "' OR '1'='1"`);
      expect(await victimAlive()).to.equal(true);
    });
  });
});
