// What the RELIABILITY scenarios on Postgres share: the wire tap, processes, a listener, and the sample on a schema.
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { connect, type Channel, type ChannelModel } from 'amqplib';
import type { Container } from 'inversify';
import knex, { type Knex } from 'knex';
import type { Exchanges } from '../../adapters/amqp/index.js';
import { KnexUnitOfWork } from '../../adapters/knex/index.js';
import { TOKENS, withRules, type Context, type Mediator } from '../../lib/core/index.js';
import type { RunningRelay } from '../../lib/messaging/index.js';
import { MoveInventory, ReceiveStock } from '../../samples/inventory/index.js';
import { postgres } from '../support/db.js';
import { expect } from '../support/helpers.js';
import { runToEnd, spawnChild } from '../support/processes.js';
import { createSchema, sampleOnPostgres } from '../support/sample-db.js';

const CHILD = fileURLToPath(new URL('../support/postgres-child.ts', import.meta.url));
const CLI = fileURLToPath(new URL('../../adapters/cli/main.ts', import.meta.url));
export const manager = { actor: { id: 'manager-1', roles: ['manager'] } };
export const clerk = { actor: { id: 'clerk-1', roles: ['clerk'] } };

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
export const wire = {
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
export function carries(values: readonly unknown[], text: string): boolean {
  const escaped = JSON.stringify(text).slice(1, -1);
  return values.some((value) => typeof value === 'string' && (value.includes(text) || value.includes(escaped)));
}

// ---- processes and polling -----------------------------------------------------------------------------------------

/** Polls a condition a process we do not control makes true (a backend's state in pg_stat_activity). */
export async function waitUntil(done: () => Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  for (const deadline = Date.now() + timeoutMs; !(await done());) {
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** A child process of ./child.ts; its `waitFor` waits as long as a case may (the describe's timeout). */
export const child = (env: Record<string, string>) => spawnChild(CHILD, env, { timeoutMs: 60_000 });

/** Runs `usecasecore ...args` as a process to its end. */
export const cli = (args: readonly string[], env: Record<string, string>) =>
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
export async function listen(url: string, exchanges: Exchanges, queue: string, routingKey: string) {
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

// ---- the schema, and the sample on it ------------------------------------------------------------------------------

/** The machine's Postgres: its URL, the schema of this file's scenarios, an admin knex (set by the hooks below). */
export let url: string;
export let schema: string;
export let admin: Knex;
/** What the case opened, closed after it: its samples (their relays stopped first) and knexes. */
export const opened: Array<{ db: Knex; container: Container }> = [];
const knexes: Knex[] = [];

/**
 * Registers the hooks each file's describe needs: a schema of its own with the sample's tables and the wire tapped,
 * whatever a case opened closed after it, and the schema dropped at the end.
 */
export function usePostgresWorld(): void {
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
}

/** The sample app on the schema, closed after the case. */
export function sample(options: Parameters<typeof sampleOnPostgres>[2] = {}) {
  const s = sampleOnPostgres(url, schema, { pool: 4, ...options });
  opened.push(s);
  return s;
}
/** A knex on the spec's schema whose connections carry `app` as their application_name. */
export function named(app: string, pool = 4): Knex {
  const db = knex({
    client: 'pg',
    connection: { connectionString: url, application_name: app },
    searchPath: [schema],
    pool: { min: 0, max: pool },
  });
  knexes.push(db);
  return db;
}
export const q = async (sql: string, bindings: readonly unknown[] = []): Promise<any[]> =>
  (await admin.raw(sql.replaceAll('$schema', schema), bindings as never)).rows;
export const count = async (sql: string, bindings: readonly unknown[] = []) => Number((await q(sql, bindings))[0].n);
export const bins = async (productId: string) =>
  Object.fromEntries(
    (await q(`SELECT bin_id, qty FROM "$schema".sample_stock WHERE product_id = ?`, [productId])).map((r) => [
      r.bin_id,
      Number(r.qty),
    ]),
  );
export const keyRows = (key: string) => count(`SELECT count(*) n FROM "$schema".ucc_idempotency WHERE key = ?`, [key]);
export const moved = (productId: string) =>
  count(`SELECT count(*) n FROM "$schema".ucc_outbox WHERE type = 'inventory.moved' AND payload->>'productId' = ?`, [
    productId,
  ]);
export const audited = async (type: string, productId: string) =>
  (
    await q(
      `SELECT outcome, replayed FROM "$schema".ucc_audit WHERE type = ? AND payload->>'productId' = ?
       ORDER BY position`,
      [type, productId],
    )
  ).map((r) => (r.replayed ? `${r.outcome}:replayed` : r.outcome));
export async function stock(mediator: Mediator, productId: string, binQty: Record<string, number>) {
  for (const [binId, qty] of Object.entries(binQty)) {
    const r = await mediator.send(ReceiveStock.from({ productId, binId, qty }), manager);
    expect(r.ok, JSON.stringify(r)).to.equal(true);
  }
}
/** A move of `qty` from A to B. */
export const move = (productId: string, qty = 3, reason = 'scenario') =>
  MoveInventory.from({ productId, fromBinId: 'A', toBinId: 'B', qty, reason });
/** After the handler, another session terminates this transaction's backend (once per `arm()`). */
export function terminator() {
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
