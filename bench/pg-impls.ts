// The implementations the Postgres bench compares. Each takes TAKE from one counter row in one transaction and
// writes an idempotency row, an audit row (sha256 hash computed in JS) and an outbox row into the library's own
// tables (created by `migrate()` from adapters/knex): ucc_idempotency, ucc_audit (chained after commit by a sealer
// for the usecasecore rows), ucc_outbox.
import 'reflect-metadata';
import crypto, { randomUUID } from 'node:crypto';
import { Container, inject, injectable } from 'inversify';
import type { Knex } from 'knex';
import * as v from 'valibot';
import { KnexUnitOfWork, knexModule, tables } from '../adapters/knex/index.js';
import {
  Command,
  Event,
  createMediator,
  fail,
  handles,
  notFound,
  ok,
  type Context,
  type Handler,
} from '../lib/core/index.js';
import { recommendedStack, rule } from '../middleware/index.js';
import { STOCK, TAKE, type PgPool } from './pg-common.js';

/** One op: caller `caller` takes TAKE from `row`, with a fresh idempotency key. Resolves true when it committed. */
export type Op = (caller: number, row: string, key: string) => Promise<boolean>;

const T = tables(); // unqualified: the connection's search path is the run's schema
const TTL_MS = 86_400_000;
const actorOf = (caller: number) => `caller-${caller}`;
const sha256 = (text: string) => crypto.createHash('sha256').update(text).digest('hex');

// ---- usecasecore ----------------------------------------------------------------------------------------------

/** The command: take `qty` from counter `id`. */
export class Take extends Command(v.object({ id: v.string(), qty: v.number() }))<
  { qtyAfter: number },
  'insufficient_stock'
> {}

/** The event the handler publishes (one outbox row per send). */
export class Taken extends Event(v.object({ id: v.string(), qty: v.number(), qtyAfter: v.number() })) {
  static readonly type = 'stock.taken';
}

/** The handler as the README teaches it: `load()` locks the row through the ambient transaction, `handle()` writes. */
@handles(Take)
@injectable()
export class TakeHandler implements Handler<Take, number | undefined> {
  constructor(@inject(KnexUnitOfWork) private readonly uow: KnexUnitOfWork) {}

  async load(cmd: Take): Promise<number | undefined> {
    const db = await this.uow.db();
    const row: { qty: number } | undefined = await db(STOCK).where({ id: cmd.id }).forUpdate().first('qty');
    return row?.qty;
  }

  async handle(cmd: Take, ctx: Context<Take, number | undefined>) {
    const qty = ctx.state;
    if (qty === undefined) return notFound(`No counter ${cmd.id}`);
    if (qty < cmd.qty) return fail('insufficient_stock', { available: qty });
    const qtyAfter = qty - cmd.qty;
    const db = await this.uow.db();
    await db(STOCK).where({ id: cmd.id }).update({ qty: qtyAfter });
    ctx.publish(new Taken({ id: cmd.id, qty: cmd.qty, qtyAfter }), { aggregateId: cmd.id });
    return ok({ qtyAfter });
  }
}

/**
 * `recommendedStack` (validation, audit, idempotency, unitOfWork, policy, transition, publish) on `knexModule`.
 * No bus module is loaded, so no relay wakes after commit: outbox rows stay unsent, as in the hand-written rows.
 * `tenantPerCaller` sends each caller in its own tenant (16 audit chains instead of one): with the chain sealed after
 * commit, one tenant's commits no longer wait on one another, so both should run alike.
 */
export function usecasecore(
  db: Knex,
  options: { tenantPerCaller: boolean },
): { op: Op; middleware: readonly string[] } {
  const container = new Container();
  container.load(knexModule({ knex: db }));
  const mediator = createMediator(container, {
    handlers: [TakeHandler],
    middleware: recommendedStack({ rules: [rule(Take, (ctx) => ctx.meta.actor !== undefined)] }),
  });
  const actors = Array.from({ length: 1024 }, (_, i) => ({ id: actorOf(i) }));
  const op: Op = async (caller, row, key) => {
    const result = await mediator.send(Take.from({ id: row, qty: TAKE }), {
      actor: actors[caller]!,
      idempotencyKey: key,
      ...(options.tenantPerCaller ? { tenant: `t${caller}` } : {}),
    });
    if (!result.ok) throw new Error(`send failed: ${JSON.stringify(result.failure)}`);
    return result.replayed !== true;
  };
  return { op, middleware: mediator.describe(Take).middleware };
}

// ---- hand-written ---------------------------------------------------------------------------------------------

/** The rows one op writes, computed in JS (the same for knex and pg). `seq` numbers the tenant's audit rows. */
function records(tenant: string, seq: number, caller: number, row: string, key: string, qtyAfter: number) {
  const now = Date.now(),
    at = new Date(now).toISOString(),
    actor = actorOf(caller),
    requestId = randomUUID();
  const payload = { id: row, qty: TAKE };
  const audit = {
    tenant,
    seq,
    id: randomUUID(),
    at,
    actor,
    type: 'Take',
    request_id: requestId,
    outcome: 'ok',
    payload,
  };
  return {
    idempotency: {
      scope: `${tenant}\u001f${actor}`,
      key,
      fingerprint: sha256(`Take\n${JSON.stringify(payload)}`),
      response: JSON.stringify({ ok: true, value: { qtyAfter } }),
      expires_at: now + TTL_MS,
    },
    audit: { ...audit, payload: JSON.stringify(payload), prev_hash: '', hash: sha256(JSON.stringify(audit)) },
    outbox: {
      id: randomUUID(),
      kind: 'event',
      type: 'stock.taken',
      payload: JSON.stringify({ id: row, qty: TAKE, qtyAfter }),
      occurred_at: at,
      aggregate_id: row,
      headers: JSON.stringify({ requestId, tenant, causationType: 'Take', actor }),
    },
  };
}

/**
 * One knex transaction: SELECT … FOR UPDATE, UPDATE, INSERT idempotency row (already completed), INSERT audit row,
 * INSERT outbox row. Audit rows are numbered by a process-local counter in tenant `hand-knex`: no hash chain, so
 * no shared head row.
 */
export function handKnex(db: Knex): Op {
  let seq = 0;
  return (caller, row, key) =>
    db.transaction(async (trx) => {
      const found: { qty: number } | undefined = await trx(STOCK).where({ id: row }).forUpdate().first('qty');
      if (!found || found.qty < TAKE) return false;
      const qtyAfter = found.qty - TAKE;
      await trx(STOCK).where({ id: row }).update({ qty: qtyAfter });
      const r = records('hand-knex', ++seq, caller, row, key, qtyAfter);
      await trx(T.idempotency).insert(r.idempotency);
      await trx(T.audit).insert(r.audit);
      await trx(T.outbox).insert(r.outbox);
      return true;
    });
}

/** The same five statements as `handKnex`, with pg (extended protocol, hand-written SQL) on a pg.Pool client. */
export function rawPg(pool: PgPool): Op {
  let seq = 0;
  return async (caller, row, key) => {
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      const found = await client.query<{ qty: number }>(`SELECT qty FROM ${STOCK} WHERE id = $1 FOR UPDATE`, [row]);
      const qty = found.rows[0]?.qty;
      if (qty === undefined || qty < TAKE) {
        await client.query('ROLLBACK');
        return false;
      }
      const qtyAfter = qty - TAKE;
      await client.query(`UPDATE ${STOCK} SET qty = $1 WHERE id = $2`, [qtyAfter, row]);
      const { idempotency: i, audit: a, outbox: o } = records('hand-pg', ++seq, caller, row, key, qtyAfter);
      await client.query(
        `INSERT INTO ${T.idempotency} (scope, key, fingerprint, response, expires_at) VALUES ($1, $2, $3, $4, $5)`,
        [i.scope, i.key, i.fingerprint, i.response, i.expires_at],
      );
      await client.query(
        `INSERT INTO ${T.audit} (tenant, seq, id, at, actor, type, request_id, outcome, payload, prev_hash, hash)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
        [a.tenant, a.seq, a.id, a.at, a.actor, a.type, a.request_id, a.outcome, a.payload, a.prev_hash, a.hash],
      );
      await client.query(
        `INSERT INTO ${T.outbox} (id, kind, type, payload, occurred_at, aggregate_id, headers) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
        [o.id, o.kind, o.type, o.payload, o.occurred_at, o.aggregate_id, o.headers],
      );
      await client.query('COMMIT');
      return true;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      client.release();
    }
  };
}

/**
 * Diagnostic: hand-written knex that sends exactly the pipeline's statements and nothing else — BEGIN, the
 * idempotency claim (an insert that blocks a concurrent duplicate), SELECT … FOR UPDATE, UPDATE, then one statement
 * with the idempotency result, the unchained audit record and the outbox row, COMMIT. The gap between this row and
 * `ucc` is the library's own cost (middleware, AsyncLocalStorage, validation, Context); the gap between this row and
 * `knex` is the protocol's.
 */
export function handKnexPipelineSql(db: Knex): Op {
  const tenant = 'hand-chain';
  return async (caller, row, key) => {
    const actor = actorOf(caller),
      scope = `${tenant}\u001f${actor}`,
      payload = { id: row, qty: TAKE };
    const fingerprint = sha256(`Take\n${JSON.stringify(payload)}`);
    return db.transaction(async (trx) => {
      const claimed = await trx.raw(
        `INSERT INTO ?? (scope, key, fingerprint) VALUES (?, ?, ?) ON CONFLICT (scope, key) DO NOTHING RETURNING 1`,
        [T.idempotency, scope, key, fingerprint],
      );
      if (claimed.rows.length === 0) return false;
      const found: { qty: number } | undefined = await trx(STOCK).where({ id: row }).forUpdate().first('qty');
      if (!found || found.qty < TAKE) throw new Error(`counter ${row} is empty`);
      const qtyAfter = found.qty - TAKE;
      await trx(STOCK).where({ id: row }).update({ qty: qtyAfter });
      const at = new Date().toISOString(),
        requestId = randomUUID();
      await trx.raw(
        `WITH i AS (UPDATE ?? SET response = ?, expires_at = ? WHERE scope = ? AND key = ?),
           a AS (INSERT INTO ?? (tenant, id, at, actor, type, request_id, outcome, payload)
                 VALUES (?, ?, ?, ?, 'Take', ?, 'ok', ?::jsonb))
         INSERT INTO ?? (id, kind, type, payload, occurred_at, aggregate_id, headers)
         VALUES (?, 'event', 'stock.taken', ?::jsonb, ?, ?, ?::jsonb)`,
        [
          T.idempotency,
          JSON.stringify({ ok: true, value: { qtyAfter } }),
          Date.now() + TTL_MS,
          scope,
          key,
          T.audit,
          tenant,
          randomUUID(),
          at,
          actor,
          requestId,
          JSON.stringify(payload),
          T.outbox,
          randomUUID(),
          JSON.stringify({ id: row, qty: TAKE, qtyAfter }),
          at,
          row,
          JSON.stringify({ requestId, tenant, causationType: 'Take', actor }),
        ],
      );
      return true;
    });
  };
}
