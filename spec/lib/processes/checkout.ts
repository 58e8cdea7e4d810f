// A checkout process for the process specs: reserve stock, charge a card (which may decline, fail for a while, throw,
// or confirm later by an event), then ship; each step undone in reverse when a later one fails.
import { injectable } from 'inversify';
import * as v from 'valibot';
import type { Knex } from 'knex';
import type { KnexUnitOfWork } from '../../../adapters/knex/index.js';
import { MemoryUnitOfWork, TransactionalMap } from '../../../adapters/memory/index.js';
import {
  Command,
  Event,
  fail,
  failure,
  handles,
  ok,
  type Context,
  type Handler,
  type ProcessStepRef,
} from '../../../lib/core/index.js';
import { process, step, waitFor } from '../../../lib/processes/index.js';
import { inject } from 'inversify';

const order = { orderId: v.string(), qty: v.number(), card: v.string() };
export class Reserve extends Command(v.object(order))<
  { orderId: string; qty: number; card: string; reservationId: string },
  'insufficient_stock'
> {}
export class Release extends Command(v.object({ ...order, reservationId: v.string() }))<void> {}
export class Charge extends Command(v.object({ ...order, reservationId: v.string() }))<
  { orderId: string; chargeId: string; status: 'succeeded' | 'pending' },
  'declined'
> {}
export class Refund extends Command(v.object({ orderId: v.string(), chargeId: v.string() }))<void, 'refund_refused'> {}
export class Ship extends Command(v.object({ orderId: v.string(), chargeId: v.string() }))<{ shipped: string }> {}
export class PaymentConfirmed extends Event(v.object({ chargeId: v.string(), status: v.string() })) {}
export class Settle extends Command(v.object({ chargeId: v.string(), status: v.string() }))<void> {}
export class CancelOrder extends Command(
  v.object({ processId: v.string(), input: v.object(order), failure: v.optional(v.unknown()) }),
)<void> {}

/**
 * Where a process that is to be killed stops and waits for its SIGKILL (spec/lib/processes/child.ts): `Charge`
 * inside that step, before it commits; `Reserve:commit` and `Charge:commit` after the step's commit, before the
 * job is acked (`Reserve:commit` is also just before the Charge step); `Release` inside the compensation.
 */
export const gates: { at: string | undefined } = { at: undefined };

/** At the gate named `point`: says so on stdout and never goes on (its process is about to be killed). */
async function gate(point: string): Promise<void> {
  if (gates.at !== point) return;
  globalThis.process.stdout.write(`AT ${point}\n`);
  await new Promise(() => undefined);
}

/** What the steps did, rolled back with their transactions, and what they saw. */
export const SHOP = Symbol.for('spec.processes.Shop');
export abstract class Shop {
  /** Calls per key, committed or not (a retried step calls again): this process's only. */
  readonly calls = new Map<string, number>();
  /** The step keys each call saw, in order. */
  readonly keys: string[] = [];
  /** How many times a card fails before it works (`flaky`). */
  flakyFailures = 2;
  /** Records an effect (`reserve:o-1`) in the ambient transaction: it commits with the step, or not at all. */
  abstract did(effect: string): Promise<void>;
  /** How many times an effect committed. */
  abstract count(effect: string): Promise<number>;
  call(key: string, ref: ProcessStepRef | undefined): number {
    if (ref) this.keys.push(ref.key);
    const n = (this.calls.get(key) ?? 0) + 1;
    this.calls.set(key, n);
    return n;
  }
}

/** Effects in a map undone with the memory transaction. */
@injectable()
export class MemoryShop extends Shop {
  readonly #effects: TransactionalMap<string, number>;
  constructor(@inject(MemoryUnitOfWork) uow: MemoryUnitOfWork) {
    super();
    this.#effects = new TransactionalMap(uow);
  }
  async did(effect: string): Promise<void> {
    this.#effects.set(effect, (this.#effects.get(effect) ?? 0) + 1);
  }
  async count(effect: string): Promise<number> {
    return this.#effects.get(effect) ?? 0;
  }
}

/** Effects in a table of the spec's schema, written in the step's transaction. */
export class KnexShop extends Shop {
  constructor(
    private readonly uow: KnexUnitOfWork,
    private readonly table: string,
  ) {
    super();
  }
  /** Creates the table `effects` in `schema`. */
  static async create(db: Knex, schema: string): Promise<string> {
    await db.schema.withSchema(schema).createTable('effects', (t) => {
      t.text('name').primary();
      t.integer('n').notNullable();
    });
    return `${schema}.effects`;
  }
  async did(effect: string): Promise<void> {
    const db = await this.uow.db();
    await db.raw(`INSERT INTO ?? (name, n) VALUES (?, 1) ON CONFLICT (name) DO UPDATE SET n = ??.n + 1`, [
      this.table,
      effect,
      this.table.split('.').pop()!,
    ]);
  }
  async count(effect: string): Promise<number> {
    const row = await (await this.uow.db())(this.table).where({ name: effect }).first();
    return row ? Number(row.n) : 0;
  }
}

@handles(Reserve)
@injectable()
export class ReserveHandler implements Handler<Reserve> {
  constructor(@inject(SHOP) private readonly shop: Shop) {}
  async handle(cmd: Reserve, ctx: Context<Reserve>) {
    this.shop.call(`reserve:${cmd.orderId}`, ctx.meta.process);
    if (cmd.orderId.startsWith('sold-out')) return fail('insufficient_stock', { available: 0 });
    await this.shop.did(`reserve:${cmd.orderId}`);
    ctx.afterCommit(() => gate('Reserve:commit'));
    return ok({ orderId: cmd.orderId, qty: cmd.qty, card: cmd.card, reservationId: `r-${cmd.orderId}` });
  }
}

@handles(Release)
@injectable()
export class ReleaseHandler implements Handler<Release> {
  constructor(@inject(SHOP) private readonly shop: Shop) {}
  async handle(cmd: Release) {
    await gate('Release');
    await this.shop.did(`release:${cmd.orderId}`);
    return ok(undefined);
  }
}

@handles(Charge)
@injectable()
export class ChargeHandler implements Handler<Charge> {
  constructor(@inject(SHOP) private readonly shop: Shop) {}
  async handle(cmd: Charge, ctx: Context<Charge>) {
    const calls = this.shop.call(`charge:${cmd.orderId}`, ctx.meta.process);
    await gate('Charge');
    if (cmd.card === 'decline') return fail('declined');
    if (cmd.card === 'broken') throw new Error('the provider is broken');
    if (cmd.card === 'flaky' && calls <= this.shop.flakyFailures)
      return failure({ kind: 'unavailable', message: 'the provider answered 503' });
    await this.shop.did(`charge:${cmd.orderId}`);
    ctx.afterCommit(() => gate('Charge:commit'));
    const status = cmd.card === 'pending' ? 'pending' : 'succeeded';
    return ok({ orderId: cmd.orderId, chargeId: `ch-${cmd.orderId}`, status } as const);
  }
}

@handles(Refund)
@injectable()
export class RefundHandler implements Handler<Refund> {
  constructor(@inject(SHOP) private readonly shop: Shop) {}
  async handle(cmd: Refund) {
    const calls = this.shop.call(`refund:${cmd.orderId}`, undefined);
    if (cmd.orderId.includes('no-refund') && calls <= 1) return fail('refund_refused');
    await this.shop.did(`refund:${cmd.orderId}`);
    return ok(undefined);
  }
}

@handles(Ship)
@injectable()
export class ShipHandler implements Handler<Ship> {
  constructor(@inject(SHOP) private readonly shop: Shop) {}
  async handle(cmd: Ship) {
    if (cmd.orderId.startsWith('no-ship')) return fail('no_carrier' as never);
    await this.shop.did(`ship:${cmd.orderId}`);
    return ok({ shipped: cmd.orderId });
  }
}

/** The provider's webhook: it publishes the confirmation a waiting checkout takes. */
@handles(Settle)
@injectable()
export class SettleHandler implements Handler<Settle> {
  handle(cmd: Settle, ctx: Context<Settle>) {
    ctx.publish(new PaymentConfirmed({ chargeId: cmd.chargeId, status: cmd.status }));
    return ok(undefined);
  }
}

@handles(CancelOrder)
@injectable()
export class CancelOrderHandler implements Handler<CancelOrder> {
  constructor(@inject(SHOP) private readonly shop: Shop) {}
  async handle(cmd: CancelOrder) {
    await this.shop.did(`cancel:${cmd.input.orderId}`);
    return ok(undefined);
  }
}

export const Checkout = process(
  'Checkout',
  [
    step(Reserve, { compensate: Release }),
    step(Charge, { compensate: Refund }),
    waitFor(PaymentConfirmed, {
      key: (charge: { orderId: string; chargeId: string; status: string }) =>
        charge.status === 'pending' ? charge.chargeId : undefined,
      match: (event) => event.chargeId,
      accept: (event) => event.status === 'succeeded' || `the payment ${event.status}`,
      timeoutMs: 2_000,
    }),
    step(Ship),
  ],
  { onFailure: CancelOrder },
);

export const SHOP_HANDLERS = [
  ReserveHandler,
  ReleaseHandler,
  ChargeHandler,
  RefundHandler,
  ShipHandler,
  SettleHandler,
  CancelOrderHandler,
];
