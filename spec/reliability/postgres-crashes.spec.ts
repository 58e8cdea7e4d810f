// RELIABILITY.md scenarios on the real services: Postgres, RabbitMQ, and processes spawned and SIGKILLed
// (8, 10, 11, 13, 14, 17, 18, 35). The ones that need neither are in spec/scenarios.spec.ts.
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { connect, type Channel, type ChannelModel } from 'amqplib';
import { Container, inject, injectable } from 'inversify';
import knex, { type Knex } from 'knex';
import * as v from 'valibot';
import { AmqpBus, AmqpConnection, type Exchanges } from '../../adapters/amqp/index.js';
import {
  KnexAuditStore,
  KnexIdempotencyStore,
  KnexOutbox,
  KnexUnitOfWork,
  knexModule,
  tables,
} from '../../adapters/knex/index.js';
import { memoryBusModule } from '../../adapters/memory/index.js';
import { ManualClock } from '../../lib/testing/index.js';
import {
  Command,
  TOKENS,
  createMediator,
  handles,
  ok,
  withRules,
  type Claim,
  type Context,
  type Handler,
  type Mediator,
  type Result,
} from '../../lib/core/index.js';
import { createRelay, type RunningRelay } from '../../lib/messaging/index.js';
import { retention } from '../../lib/ops/index.js';
import {
  audit,
  everyone,
  idempotency,
  policy,
  recommendedStack,
  unitOfWork,
  validation,
} from '../../middleware/index.js';
import { FEATURES } from '../../samples/app.js';
import { GetAuditLog } from '../../samples/audit/index.js';
import { GetInventory, MoveInventory, ReceiveStock } from '../../samples/inventory/index.js';
import { GetOrder } from '../../samples/orders/index.js';
import { sqlRepositories } from '../../samples/sql.js';
import { deleteTopology, isolatedTopology, rabbit } from '../support/broker.js';
import { dropSchema, freshSchema, postgres } from '../support/db.js';
import { expect } from '../support/helpers.js';
import { runToEnd, spawnChild } from '../support/processes.js';
import { createSchema, sampleOnPostgres } from '../support/sample-db.js';

const CHILD = fileURLToPath(new URL('../support/postgres-child.ts', import.meta.url));
const CLI = fileURLToPath(new URL('../../adapters/cli/main.ts', import.meta.url));
const manager = { actor: { id: 'manager-1', roles: ['manager'] } };
const clerk = { actor: { id: 'clerk-1', roles: ['clerk'] } };

// ---- the wire: every statement this process sends to Postgres ----------------------------------------------------

/** One statement as node-postgres sent it: its text and, apart, its values. */
interface Statement {
  readonly text: string;
  readonly values: readonly unknown[];
}
type PgQuery = (this: PgClient, config: unknown, values?: unknown, callback?: unknown) => unknown;
interface PgClient {
  readonly processID: number;
}
const pgDriver = createRequire(import.meta.url)('pg') as { Client: { prototype: { query: PgQuery } } };
const original = pgDriver.Client.prototype.query;

/**
 * Taps node-postgres (the driver under knex, whichever path a statement takes) in this process: `log` collects every
 * statement while set; `afterClaim` runs once on the connection of the next idempotency claim that found the key
 * taken, after that claim and before the statement that reads the key.
 */
const wire = {
  log: undefined as Statement[] | undefined,
  afterClaim: undefined as ((client: PgClient) => Promise<void>) | undefined,
  /** Runs a statement on `client` past the tap. */
  run(client: PgClient, text: string, values: readonly unknown[]): Promise<unknown> {
    return original.call(client, text, values) as Promise<unknown>;
  },
  install() {
    pgDriver.Client.prototype.query = function (this: PgClient, config, values, callback) {
      const text = typeof config === 'string' ? config : (config as { text?: unknown } | null)?.text;
      if (typeof text !== 'string') return original.call(this, config, values, callback);
      const given = Array.isArray(values) ? values : (config as { values?: unknown[] }).values;
      wire.log?.push({ text, values: given ?? [] });
      if (!wire.afterClaim || !text.includes(' AS claimed')) return original.call(this, config, values, callback);
      const done = typeof values === 'function' ? values : callback;
      const run = (async () => {
        const result = (await original.call(this, config, typeof values === 'function' ? undefined : values)) as {
          rows: Array<{ claimed: number }>;
        };
        const hook = wire.afterClaim;
        if (hook && result.rows[0]?.claimed === 0) {
          wire.afterClaim = undefined;
          await hook(this);
        }
        return result;
      })();
      if (typeof done !== 'function') return run;
      void run.then(
        (result) => (done as (e: unknown, r?: unknown) => void)(null, result),
        (error: unknown) => (done as (e: unknown) => void)(error),
      );
      return undefined;
    };
  },
  uninstall() {
    pgDriver.Client.prototype.query = original;
    wire.log = undefined;
    wire.afterClaim = undefined;
  },
};

/** Whether `text` occurs in a value, as is or JSON-escaped (inside a jsonb payload). */
function carries(values: readonly unknown[], text: string): boolean {
  const escaped = JSON.stringify(text).slice(1, -1);
  return values.some((value) => typeof value === 'string' && (value.includes(text) || value.includes(escaped)));
}

// ---- processes and polling -----------------------------------------------------------------------------------------

/** Polls a condition a process we do not control makes true (a backend's state in pg_stat_activity). */
async function waitUntil(done: () => Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  for (const deadline = Date.now() + timeoutMs; !(await done());) {
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** A child process of ./child.ts; its `waitFor` waits as long as a case may (the describe's timeout). */
const child = (env: Record<string, string>) => spawnChild(CHILD, env, { timeoutMs: 60_000 });

/** Runs `usecasecore ...args` as a process to its end. */
const cli = (args: readonly string[], env: Record<string, string>) =>
  runToEnd(CLI, args, { UCC_SCHEMA: '', UCC_PREFIX: '', ...env });

/** What a queue received, in order; `until` resolves once a condition holds on it, or rejects after `fail`. */
class Received {
  readonly messages: Array<{ id: string; payload: any }> = [];
  #waiters: Array<{ done: () => boolean; resolve: () => void; reject: (error: Error) => void }> = [];
  #failed: Error | undefined;
  push(id: string, payload: unknown): void {
    this.messages.push({ id, payload });
    this.#waiters = this.#waiters.filter((w) => (w.done() ? (w.resolve(), false) : true));
  }
  fail(error: Error): void {
    this.#failed ??= error;
    for (const w of this.#waiters.splice(0)) w.reject(error);
  }
  until(done: () => boolean): Promise<void> {
    if (done()) return Promise.resolve();
    if (this.#failed) return Promise.reject(this.#failed);
    return new Promise((resolve, reject) => this.#waiters.push({ done, resolve, reject }));
  }
}

/** A queue of our own bound to the events exchange, consumed into a `Received`. */
async function listen(url: string, exchanges: Exchanges, queue: string, routingKey: string) {
  const model: ChannelModel = await connect(url);
  const channel: Channel = await model.createChannel();
  await channel.assertExchange(exchanges.events, 'topic', { durable: true });
  await channel.assertQueue(queue, { durable: false });
  await channel.bindQueue(queue, exchanges.events, routingKey);
  await channel.prefetch(1_000);
  const received = new Received();
  // Fail fast, with the count, rather than wait for ever on a consumer that stopped.
  model.on('error', () => undefined); // 'close' follows
  model.on('close', () =>
    received.fail(new Error(`the spec's consumer lost the broker after ${received.messages.length} messages`)),
  );
  await channel.consume(queue, (delivery) => {
    if (!delivery) return;
    received.push(String(delivery.properties.messageId), JSON.parse(delivery.content.toString('utf8')));
    channel.ack(delivery);
  });
  return { model, channel, received };
}

// ---- the specs -----------------------------------------------------------------------------------------------------

describe('RELIABILITY scenarios on Postgres, RabbitMQ and processes', function () {
  this.timeout(60_000);
  let url: string;
  let schema: string;
  let admin: Knex;
  const opened: Array<{ db: Knex; container: Container }> = [];
  const knexes: Knex[] = [];

  before(async function () {
    const found = await postgres();
    if (!found) return this.skip();
    admin = found;
    url = process.env.DATABASE_URL!;
    schema = `pgscn_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
    await createSchema(url, schema);
    wire.install();
  });

  // Each case closes what it opened: the server's connections are shared with whatever else runs.
  afterEach(async () => {
    wire.log = wire.afterClaim = undefined;
    const [samples, pools] = [opened.splice(0), knexes.splice(0)];
    await Promise.all(samples.map(({ container }) => container.get<RunningRelay>(TOKENS.Relay).stop()));
    await Promise.all([...new Set([...samples.map(({ db }) => db), ...pools])].map((db) => db.destroy()));
  });
  after(async () => {
    wire.uninstall();
    if (schema && admin) await admin.raw('DROP SCHEMA IF EXISTS ?? CASCADE', [schema]);
  });

  function sample(options: Parameters<typeof sampleOnPostgres>[2] = {}) {
    const s = sampleOnPostgres(url, schema, { pool: 4, ...options });
    opened.push(s);
    return s;
  }
  /** A knex on the spec's schema whose connections carry `app` as their application_name. */
  function named(app: string, pool = 4): Knex {
    const db = knex({
      client: 'pg',
      connection: { connectionString: url, application_name: app },
      searchPath: [schema],
      pool: { min: 0, max: pool },
    });
    knexes.push(db);
    return db;
  }
  const q = async (sql: string, bindings: readonly unknown[] = []): Promise<any[]> =>
    (await admin.raw(sql.replaceAll('$schema', schema), bindings as never)).rows;
  const count = async (sql: string, bindings: readonly unknown[] = []) => Number((await q(sql, bindings))[0].n);
  const bins = async (productId: string) =>
    Object.fromEntries(
      (await q(`SELECT bin_id, qty FROM "$schema".sample_stock WHERE product_id = ?`, [productId])).map((r) => [
        r.bin_id,
        Number(r.qty),
      ]),
    );
  const keyRows = (key: string) => count(`SELECT count(*) n FROM "$schema".ucc_idempotency WHERE key = ?`, [key]);
  const moved = (productId: string) =>
    count(`SELECT count(*) n FROM "$schema".ucc_outbox WHERE type = 'inventory.moved' AND payload->>'productId' = ?`, [
      productId,
    ]);
  const audited = async (type: string, productId: string) =>
    (
      await q(
        `SELECT outcome, replayed FROM "$schema".ucc_audit WHERE type = ? AND payload->>'productId' = ?
         ORDER BY position`,
        [type, productId],
      )
    ).map((r) => (r.replayed ? `${r.outcome}:replayed` : r.outcome));
  async function stock(mediator: Mediator, productId: string, binQty: Record<string, number>) {
    for (const [binId, qty] of Object.entries(binQty)) {
      const r = await mediator.send(ReceiveStock.from({ productId, binId, qty }), manager);
      expect(r.ok, JSON.stringify(r)).to.equal(true);
    }
  }
  /** A move of `qty` from A to B. */
  const move = (productId: string, qty = 3, reason = 'scenario') =>
    MoveInventory.from({ productId, fromBinId: 'A', toBinId: 'B', qty, reason });
  /** After the handler, another session terminates this transaction's backend (once per `arm()`). */
  function terminator() {
    let armed = false;
    let uow: KnexUnitOfWork | undefined;
    const middleware = withRules(async function terminate(_ctx: Context, next: () => Promise<any>) {
      const result = await next();
      if (armed) {
        armed = false;
        const pid = (await (await uow!.db()).raw('SELECT pg_backend_pid() AS pid')).rows[0].pid;
        await admin.raw('SELECT pg_terminate_backend(?)', [pid]);
      }
      return result;
    }, {});
    return {
      middleware,
      bind(container: Container) {
        uow = container.get(KnexUnitOfWork);
      },
      arm() {
        armed = true;
      },
    };
  }

  describe('8 · a process SIGKILLed inside its transaction', () => {
    it('should leave no row of any kind, answer in_progress meanwhile, then run the key once', async () => {
      const { mediator: impatient } = sample({ waitMs: 200 });
      const { mediator } = sample();
      const productId = `p8-${randomUUID()}`;
      await stock(mediator, productId, { A: 10 });
      const key = `k8-${randomUUID()}`;
      const app = `scn8-${randomUUID().slice(0, 8)}`;
      const hung = child({
        MODE: 'hang',
        DATABASE_URL: url,
        SCHEMA: schema,
        KEY: key,
        BODY: JSON.stringify({ productId, fromBinId: 'A', toBinId: 'B', qty: 3, reason: 'killed' }),
        PGAPPNAME: app,
      });
      await hung.waitFor(/HANGING/);
      const states = (await q(`SELECT state FROM pg_stat_activity WHERE application_name = ?`, [app])).map(
        (r) => r.state,
      );
      expect(states, 'the child is inside its transaction').to.include('idle in transaction');
      expect(await impatient.send(move(productId), { ...clerk, idempotencyKey: key })).to.have.nested.property(
        'failure.kind',
        'in_progress',
      );

      await hung.kill();
      await waitUntil(
        async () => (await q(`SELECT 1 FROM pg_stat_activity WHERE application_name = ?`, [app])).length === 0,
        'the killed process has no backend left',
      );
      expect(await bins(productId), 'not even the B bin its load created').to.deep.equal({ A: 10 });
      expect(await keyRows(key)).to.equal(0);
      expect(await moved(productId)).to.equal(0);
      expect(await audited('MoveInventory', productId)).to.deep.equal(['in_progress']);

      const run = await mediator.send(move(productId), { ...clerk, idempotencyKey: key });
      expect(run).to.deep.equal({ ok: true, value: { sourceQtyAfter: 7, destQtyAfter: 3 } });
      expect(await mediator.send(move(productId), { ...clerk, idempotencyKey: key })).to.deep.equal({
        ...run,
        replayed: true,
      });
      expect(await bins(productId)).to.deep.equal({ A: 7, B: 3 });
      expect(await moved(productId)).to.equal(1);
      expect(await audited('MoveInventory', productId)).to.deep.equal(['in_progress', 'ok', 'ok:replayed']);
    });
  });

  describe('10 · TTL and the reaper', () => {
    class Book extends Command(v.object({ ref: v.string(), amount: v.number() }))<{ booking: number }> {}

    /** Books a row that references its idempotency record (FK ON DELETE SET NULL), as an app may. */
    @handles(Book)
    @injectable()
    class BookHandler implements Handler<Book> {
      constructor(@inject(KnexUnitOfWork) private readonly uow: KnexUnitOfWork) {}
      async handle(cmd: Book, ctx: Context<Book>) {
        const db = await this.uow.db();
        const key = ctx.meta.idempotencyKey;
        // The record's scope as idempotency() makes it (tenant and actor): the claim inserted it in this transaction.
        const scope = key === undefined ? null : `${ctx.meta.tenant}\u001f${ctx.meta.actor?.id ?? ''}`;
        const [row] = await db('scn_bookings')
          .insert({ ref: cmd.ref, amount: cmd.amount, idem_scope: scope, idem_key: key ?? null })
          .returning('id');
        return ok({ booking: Number(row.id) });
      }
    }

    before(async () => {
      await admin.schema.withSchema(schema).createTable('scn_bookings', (table) => {
        table.increments('id');
        table.text('ref').notNullable();
        table.integer('amount').notNullable();
        table.text('idem_scope');
        table.text('idem_key');
        table
          .foreign(['idem_scope', 'idem_key'])
          .references(['scope', 'key'])
          .inTable(`${schema}.ucc_idempotency`)
          .onDelete('SET NULL');
      });
    });

    it('should run a key anew past its TTL; the reaper deletes it, business rows stay (SET NULL)', async () => {
      const clock = new ManualClock(Date.now());
      const db = named('scn10');
      const container = new Container();
      container.load(knexModule({ knex: db, clock }), memoryBusModule());
      const mediator = createMediator(container, {
        handlers: [BookHandler],
        middleware: [validation(), unitOfWork(), audit(), idempotency({ ttlMs: 60_000 }), policy([everyone(Book)])],
      });
      const ref = `r10-${randomUUID()}`,
        key = `k10-${randomUUID()}`;
      const send = () => mediator.send(Book.from({ ref, amount: 5 }), { actor: { id: 'ann' }, idempotencyKey: key });
      const bookings = async () =>
        (await q(`SELECT id, idem_key FROM "$schema".scn_bookings WHERE ref = ? ORDER BY id`, [ref])).map((r) => [
          Number(r.id),
          r.idem_key,
        ]);

      const first = await send();
      clock.advance(59_999);
      expect(await send(), 'within the TTL: a replay').to.deep.equal({ ...first, replayed: true });
      clock.advance(2);
      const second = await send();
      expect([second.ok, second.replayed], 'past the TTL: it runs anew').to.deep.equal([true, undefined]);
      const [one, two] = [first, second].map((r) => (r.ok ? r.value.booking : NaN));
      expect(await bookings()).to.deep.equal([
        [one, key],
        [two, key],
      ]);

      clock.advance(60_001);
      const cleanup = retention(container, { idempotency: true });
      try {
        expect((await cleanup.runOnce()).idempotency).to.be.at.least(1);
      } finally {
        await cleanup.stop();
      }
      expect(await keyRows(key), 'the reaper deleted the record').to.equal(0);
      expect(await bookings(), 'the bookings survive, their reference set to NULL').to.deep.equal([
        [one, null],
        [two, null],
      ]);
      const third = await send();
      expect([third.ok, third.replayed], 'a reaped key is a new request').to.deep.equal([true, undefined]);
      expect(await bookings()).to.have.length(3);
    });
  });

  describe('11 · a race with the reaper', () => {
    let t0: number, claimer: KnexUnitOfWork, store: KnexIdempotencyStore;
    const table = tables().idempotency;
    const id = () => ({ scope: 'scn11\u001fann', key: `k11-${randomUUID()}` });
    /** Claims in a transaction of its own; `then` runs in it after the claim; commits. */
    const claimIn = async (key: { scope: string; key: string }, fingerprint: string, then?: () => Promise<void>) => {
      let claim!: Claim;
      await claimer.transaction(
        async () => {
          claim = await store.claim(key, fingerprint, 2_000);
          await then?.();
        },
        () => true,
      );
      return claim;
    };
    const completed = (key: { scope: string; key: string }, fingerprint: string, response: Result<unknown, string>) =>
      claimIn(key, fingerprint, () => store.complete(key, fingerprint, response, 10_000));
    /** The key's row as the claiming transaction sees it. */
    const ownRow = async (key: { scope: string; key: string }) =>
      (
        await (
          await claimer.db()
        ).raw('SELECT fingerprint, response FROM ?? WHERE scope = ? AND key = ?', [table, key.scope, key.key])
      ).rows as Array<{ fingerprint: string; response: string | null }>;

    beforeEach(() => {
      t0 = Date.now();
      claimer = new KnexUnitOfWork(named('scn11-claimer'));
      store = new KnexIdempotencyStore(claimer, table, new ManualClock(t0));
    });

    it('should make the reaper wait on the row the claim locked, so the claim replays it', async () => {
      const key = id();
      expect(await completed(key, 'fp', ok(1))).to.deep.equal({ status: 'claimed' });
      // The reaper's clock is past the record's expiry, the claimer's is not: the claim finds the key taken.
      const app = `scn11-reaper-${randomUUID().slice(0, 8)}`;
      const reaper = new KnexIdempotencyStore(new KnexUnitOfWork(named(app)), table, new ManualClock(t0 + 20_000));
      let reaping: Promise<number> | undefined;
      wire.afterClaim = async () => {
        reaping = reaper.reap();
        await waitUntil(
          async () =>
            (await q(`SELECT wait_event_type FROM pg_stat_activity WHERE application_name = ?`, [app]))[0]
              ?.wait_event_type === 'Lock',
          'the reaper waits on the row lock the claim took',
        );
      };
      expect(await claimIn(key, 'fp')).to.deep.equal({ status: 'completed', fingerprint: 'fp', response: ok(1) });
      expect(reaping, 'the reaper ran between the claim and its read').not.to.equal(undefined);
      expect(await reaping).to.be.at.least(1);
      expect(await keyRows(key.key), 'reaped once the claim ended').to.equal(0);
      let fresh: Awaited<ReturnType<typeof ownRow>> = [];
      expect(
        await claimIn(key, 'fp-2', async () => {
          fresh = await ownRow(key);
        }),
      ).to.deep.equal({ status: 'claimed' });
      expect(fresh, 'a fresh claim holds a row').to.deep.equal([{ fingerprint: 'fp-2', response: null }]);
    });

    it('should claim again when the record vanishes before the read, holding a row of its own', async () => {
      const key = id();
      await completed(key, 'fp', ok(1));
      wire.afterClaim = async (client) => {
        await wire.run(client, `DELETE FROM ${table} WHERE scope = $1 AND key = $2`, [key.scope, key.key]);
      };
      wire.log = [];
      let held: Awaited<ReturnType<typeof ownRow>> = [];
      const claim = await claimIn(key, 'fp-2', async () => {
        held = await ownRow(key);
        await store.complete(key, 'fp-2', ok(2), 10_000);
      });
      const claims = wire.log.filter((s) => s.text.includes(' AS claimed')).length;
      wire.log = undefined;
      expect(claim, 'never the vanished result, never a read of nothing').to.deep.equal({ status: 'claimed' });
      expect(claims, 'claimed again after the read found nothing').to.equal(2);
      expect(held).to.deep.equal([{ fingerprint: 'fp-2', response: null }]);
      expect(await claimIn(key, 'fp-2')).to.deep.equal({ status: 'completed', fingerprint: 'fp-2', response: ok(2) });
    });
  });

  describe('13 · bad idempotency keys', () => {
    const bad: Array<[string, string]> = [
      ['longer than 255 characters', 'k'.repeat(256)],
      ['empty (shorter than the 1-character minimum)', ''],
      ['a newline', 'abc\ndef'],
      ['a NUL', 'abc\u0000def'],
      ['an escape sequence', '\u001b[2Jx'],
      ['a space', "' OR 1=1"],
    ];

    it('should refuse bad keys as validation failures before any SQL, writing nothing', async () => {
      const { mediator } = sample();
      const productId = `p13-${randomUUID()}`;
      await stock(mediator, productId, { A: 10 });
      for (const [name, key] of bad) {
        wire.log = [];
        const result = await mediator.send(move(productId), { ...clerk, idempotencyKey: key });
        const statements = wire.log.length;
        wire.log = undefined;
        expect(result, name).to.have.nested.property('failure.kind', 'validation');
        expect(!result.ok && result.failure.kind === 'validation' && result.failure.issues[0]?.path).to.equal(
          'idempotencyKey',
        );
        expect(statements, `${name}: statements sent`).to.equal(0);
      }
      expect(await audited('MoveInventory', productId)).to.deep.equal([]);
      expect(await bins(productId)).to.deep.equal({ A: 10 });
    });

    it("should store a key like 'OR'1'='1';-- literally, sent only as a bound value, and replay it", async () => {
      const { mediator } = sample();
      const productId = `p13-${randomUUID()}`;
      await stock(mediator, productId, { A: 10 });
      for (const key of [`'OR'1'='1';--${randomUUID()}`, `';DROP-TABLE-"${schema}".ucc_idempotency;--`]) {
        wire.log = [];
        const first = await mediator.send(move(productId, 1), { ...clerk, idempotencyKey: key });
        const sent = wire.log;
        wire.log = undefined;
        expect(first.ok, JSON.stringify(first)).to.equal(true);
        expect(
          sent.filter((s) => s.text.includes(key)),
          'the key in no statement text',
        ).to.deep.equal([]);
        expect(sent.some((s) => carries(s.values, key))).to.equal(true);
        expect(await q(`SELECT key FROM "$schema".ucc_idempotency WHERE key = ?`, [key])).to.deep.equal([{ key }]);
        expect(await mediator.send(move(productId, 1), { ...clerk, idempotencyKey: key })).to.deep.equal({
          ...first,
          replayed: true,
        });
      }
      expect(await bins(productId)).to.deep.equal({ A: 8, B: 2 });
    });

    it('should never log a raw key, nor copy it into audit or outbox rows, whatever the outcome', async () => {
      const boom = withRules(async function boom(_ctx: Context, next: () => Promise<any>): Promise<never> {
        await next();
        throw new Error('handler blew up after writing');
      }, {});
      const cut = terminator();
      const { mediator } = sample();
      const { mediator: exploding } = sample({ inner: [boom] });
      const { mediator: cutting, container } = sample({ inner: [cut.middleware] });
      cut.bind(container);
      const productId = `p13-${randomUUID()}`;
      await stock(mediator, productId, { A: 10 });
      const secret = (what: string) => `k13-${what}-${randomUUID()}`;
      const keys = { ok: secret('ok'), mismatch: secret('mismatch'), domain: secret('domain') };
      const exceptionKey = secret('exception'),
        unavailableKey = secret('unavailable');

      const logged: string[] = [];
      const methods = ['log', 'info', 'warn', 'error', 'debug'] as const;
      const consoles = methods.map((m) => [m, console[m]] as const);
      const writes = [process.stdout.write, process.stderr.write] as const;
      const capture = (...args: unknown[]) => void logged.push(args.map(String).join(' '));
      for (const m of methods) console[m] = capture;
      const swallow = ((chunk: unknown) => {
        capture(chunk);
        return true;
      }) as typeof process.stdout.write;
      process.stdout.write = swallow;
      process.stderr.write = swallow;
      const outcomes: string[] = [];
      const kindOf = (r: Result<unknown, string>) => (r.ok ? (r.replayed ? 'replayed' : 'ok') : r.failure.kind);
      try {
        const as = (key: string) => ({ ...clerk, idempotencyKey: key });
        outcomes.push(kindOf(await mediator.send(move(productId, 1), as(keys.ok))));
        outcomes.push(kindOf(await mediator.send(move(productId, 1), as(keys.ok))));
        outcomes.push(kindOf(await mediator.send(move(productId, 1), as(keys.mismatch))));
        const mismatch = await mediator.send(move(productId, 2), as(keys.mismatch));
        outcomes.push(kindOf(mismatch));
        outcomes.push(kindOf(await mediator.send(move(productId, 999), as(keys.domain))));
        await exploding.send(move(productId, 1), as(exceptionKey)).then(
          () => outcomes.push('no exception'),
          () => outcomes.push('exception'),
        );
        cut.arm();
        outcomes.push(kindOf(await cutting.send(move(productId, 1), as(unavailableKey))));
        // The caller's own failure may name its key (as Stripe's does); logs and records never hold it.
        expect(!mismatch.ok && mismatch.failure.message).to.contain(keys.mismatch);
      } finally {
        for (const [m, fn] of consoles) console[m] = fn;
        process.stdout.write = writes[0];
        process.stderr.write = writes[1];
      }
      expect(outcomes).to.deep.equal([
        'ok',
        'replayed',
        'ok',
        'idempotency_mismatch',
        'domain',
        'exception',
        'unavailable',
      ]);
      const all = [...Object.values(keys), exceptionKey, unavailableKey];
      const auditText = JSON.stringify(await q(`SELECT * FROM "$schema".ucc_audit WHERE actor = 'clerk-1'`));
      const outboxText = JSON.stringify(await q(`SELECT * FROM "$schema".ucc_outbox`));
      for (const key of all) {
        expect(logged.join('\n'), 'logs').not.to.contain(key);
        expect(auditText, 'audit rows').not.to.contain(key);
        expect(outboxText, 'outbox rows').not.to.contain(key);
      }
    });
  });

  describe('14 · a process SIGKILLed between its commit and its publish', () => {
    let amqpUrl: string, listener: Awaited<ReturnType<typeof listen>>, connection: AmqpConnection;
    const topology = isolatedTopology();
    const queue = topology.queue('scn14');

    before(async function () {
      const found = await rabbit();
      if (!found) return this.skip();
      amqpUrl = found;
      listener = await listen(amqpUrl, topology.exchanges, queue, '#');
      connection = new AmqpConnection(amqpUrl);
    });
    after(async () => {
      if (!amqpUrl) return;
      await connection.close();
      await listener.model.close();
      await deleteTopology(amqpUrl, topology.exchanges, [queue]);
    });

    it("should publish the row it committed through another process's relay, under its id", async () => {
      const productId = `p14-${randomUUID()}`;
      const killed = child({
        MODE: 'commit-hang',
        DATABASE_URL: url,
        SCHEMA: schema,
        BODY: JSON.stringify({ productId, binId: 'A', qty: 4 }),
      });
      await killed.waitFor(/COMMITTED/);
      await killed.kill();
      const rows = await q(
        `SELECT id, sent_at FROM "$schema".ucc_outbox WHERE type = 'stock.received' AND payload->>'productId' = ?`,
        [productId],
      );
      expect(rows, 'committed, and never published by the killed process').to.have.length(1);
      expect(rows[0].sent_at).to.equal(null);
      const relay = createRelay(
        new KnexOutbox(new KnexUnitOfWork(named('scn14')), tables().outbox),
        new AmqpBus(connection, { exchanges: topology.exchanges, mandatoryEvents: true }),
      );
      try {
        await relay.drain(20_000);
      } finally {
        await relay.stop();
      }
      const ofProduct = () => listener.received.messages.filter((m) => m.payload.productId === productId);
      await listener.received.until(() => ofProduct().length > 0);
      expect(ofProduct().map((m) => m.id)).to.deep.equal([rows[0].id]);
      expect((await q(`SELECT sent_at FROM "$schema".ucc_outbox WHERE id = ?`, [rows[0].id]))[0].sent_at).not.to.equal(
        null,
      );
    });
  });

  describe('17 · a connection cut mid-transaction', () => {
    it('should answer unavailable, keep no claim, run the same key once after, and recover', async () => {
      const cut = terminator();
      const { mediator, container } = sample({ inner: [cut.middleware], pool: 4 });
      cut.bind(container);
      const productId = `p17-${randomUUID()}`;
      await stock(mediator, productId, { A: 100 });
      const key = `k17-${randomUUID()}`;
      cut.arm();
      expect(await mediator.send(move(productId, 2), { ...clerk, idempotencyKey: key })).to.deep.equal({
        ok: false,
        failure: { kind: 'unavailable', message: 'The database is unavailable; nothing was committed — retry later' },
      });
      expect(await bins(productId)).to.deep.equal({ A: 100 });
      expect(await keyRows(key), 'the claim died with its transaction').to.equal(0);
      expect(await moved(productId)).to.equal(0);
      expect(await audited('MoveInventory', productId)).to.deep.equal(['unavailable']);

      const retry = await mediator.send(move(productId, 2), { ...clerk, idempotencyKey: key });
      expect(retry, 'the same key runs: neither in_progress nor a replay').to.deep.equal({
        ok: true,
        value: { sourceQtyAfter: 98, destQtyAfter: 2 },
      });
      const more = await Promise.all(Array.from({ length: 12 }, () => mediator.send(move(productId, 1), clerk)));
      expect(more.map((r) => r.ok)).to.deep.equal(new Array(12).fill(true));
      expect(await bins(productId)).to.deep.equal({ A: 86, B: 14 });
      expect(await moved(productId)).to.equal(13);
    });

    // Connections cut while idle (a Postgres restart, a failover, a proxy's idle timeout) look alive until a BEGIN
    // fails on them: 5 sends on a pool of 5, pg_terminate_backend() on its backends, then 5 sends again.
    it('should answer unavailable, never reject, after the pool lost its idle connections', async () => {
      const app = `scn17-${randomUUID().slice(0, 8)}`;
      const container = new Container();
      const db = named(app, 5);
      opened.push({ db, container }); // its relay is woken by the sends: stopped before the pool closes
      container.load(knexModule({ knex: db }), memoryBusModule(), sqlRepositories());
      const mediator = createMediator(container, {
        handlers: FEATURES.flatMap((f) => f.handlers),
        middleware: recommendedStack({ rules: FEATURES.flatMap((f) => f.rules) }),
      });
      const productId = `p17-${randomUUID()}`;
      const receiveAll = () =>
        Promise.all(
          ['A', 'B', 'C', 'D', 'E'].map((binId) =>
            mediator.send(ReceiveStock.from({ productId, binId, qty: 1 }), manager).catch((error: Error) => error),
          ),
        );
      expect((await receiveAll()).map((r) => !(r instanceof Error) && r.ok)).to.deep.equal(new Array(5).fill(true));
      await admin.raw('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = ?', [app]);
      for (const result of await receiveAll()) {
        expect(result, 'resolved, not rejected').not.to.be.instanceOf(Error);
        if (!(result instanceof Error)) {
          expect(result.ok || result.failure.kind === 'unavailable', JSON.stringify(result)).to.equal(true);
        }
      }
      expect((await receiveAll()).map((r) => !(r instanceof Error) && r.ok)).to.deep.equal(new Array(5).fill(true));
      expect(
        await count(`SELECT count(*) n FROM "$schema".ucc_audit WHERE payload->>'productId' = ?`, [productId]),
      ).to.equal(15);
    });
  });

  describe('18 · competing relays in two processes', () => {
    const ROWS = 5_000;
    let amqpUrl: string, listener: Awaited<ReturnType<typeof listen>>, relaySchema: string;
    const topology = isolatedTopology();
    const queue = topology.queue('scn18');

    before(async function () {
      const found = await rabbit();
      if (!found) return this.skip();
      amqpUrl = found;
      relaySchema = (await freshSchema(admin)).schema;
      listener = await listen(amqpUrl, topology.exchanges, queue, 'scn.relayed');
    });
    after(async () => {
      if (!amqpUrl) return;
      await listener.model.close().catch(() => undefined);
      await deleteTopology(amqpUrl, topology.exchanges, [queue]);
      await dropSchema(admin, relaySchema);
    });

    it('should publish 5,000 rows once each through two relays and a killed claimer, in order', async () => {
      const outbox = `${relaySchema}.ucc_outbox`;
      // 40 aggregates, and every tenth row without one; `n` is the order rows were written in.
      await admin.raw(
        `INSERT INTO ?? (id, kind, type, payload, occurred_at, aggregate_id, headers)
         SELECT gen_random_uuid()::text, 'event', 'scn.relayed', jsonb_build_object('n', g, 'aggregate', a), now(), a,
                '{}'::jsonb
         FROM generate_series(1, ?) g, LATERAL (SELECT CASE WHEN g % 10 = 0 THEN NULL ELSE 'agg-' || g % 40 END a) x
         ORDER BY g`,
        [outbox, ROWS],
      );
      const ids: string[] = (await admin(outbox).orderBy('position').pluck('id')) as string[];
      const env = { DATABASE_URL: url, SCHEMA: relaySchema, AMQP_URL: amqpUrl };

      // A relay that claims 100 rows and dies holding them: its lease must run out before they go out.
      const dead = child({ ...env, MODE: 'claim-die', LIMIT: '100', LEASE_MS: '5000' });
      const stale: string[] = JSON.parse((await dead.waitFor(/^CLAIMED (.*)\n/m))[1]!);
      expect(stale).to.have.length(100);
      await dead.kill();

      const relays = [1, 2].map(() =>
        child({ ...env, MODE: 'relay', EXCHANGES: JSON.stringify(topology.exchanges), BATCH: '100' }),
      );
      await Promise.all(relays.map((r) => r.waitFor(/READY/)));
      expect(
        await count(`SELECT count(*) n FROM ?? WHERE id = ANY(?::text[]) AND claimed_until > ?`, [
          outbox,
          stale,
          Date.now(),
        ]),
        'still leased to the dead claimer when the relays start',
      ).to.equal(100);
      for (const r of relays) r.send('GO');
      const published: string[][] = await Promise.all(
        relays.map(async (r) => JSON.parse((await r.waitFor(/^PUBLISHED (.*)\n/m))[1]!)),
      );
      await Promise.all(relays.map((r) => r.exited));

      const all = published.flat();
      expect(
        published.map((p) => p.length > 0),
        'both relays took part',
      ).to.deep.equal([true, true]);
      expect(all, 'each row handed to the broker once, by one relay').to.have.length(ROWS);
      expect(new Set(all).size).to.equal(ROWS);
      expect(
        stale.every((id) => all.includes(id)),
        "the dead claimer's rows were reclaimed",
      ).to.equal(true);
      expect(
        await count(`SELECT count(*) n FROM ?? WHERE sent_at IS NULL OR parked_at IS NOT NULL`, [outbox]),
      ).to.equal(0);

      const { received } = listener;
      await received.until(() => received.messages.length >= ROWS);
      await listener.channel.close(); // anything delivered but not yet seen goes back to the queue
      const check = await listener.model.createChannel();
      const { messageCount } = await check.checkQueue(queue);
      expect(messageCount, 'no message beyond the 5,000').to.equal(0);
      expect(received.messages).to.have.length(ROWS);
      expect(new Set(received.messages.map((m) => m.id))).to.deep.equal(new Set(ids));
      const order = new Map<string, number[]>();
      for (const { payload } of received.messages)
        if (payload.aggregate !== null)
          order.set(payload.aggregate, [...(order.get(payload.aggregate) ?? []), payload.n]);
      expect(order.size).to.equal(36); // agg-0 … agg-39 minus the four whose rows all fall on a tenth row
      for (const [aggregate, ns] of order)
        expect(ns, `${aggregate} in the order written`).to.deep.equal([...ns].sort((a, b) => a - b));
    });
  });

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
