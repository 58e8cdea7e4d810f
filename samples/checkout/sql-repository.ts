// The checkout's stores in SQL: reservations in the ambient transaction; the provider's charges in writes of their
// own (the provider is another system; `attempt` holds the key's row so two requests with one key take turns).
import { inject, injectable } from 'inversify';
import type { Knex } from 'knex';
import { KNEX, KnexUnitOfWork } from '../../adapters/knex/index.js';
import type { Charge, ChargeStatus, ChargeStore, Reservation, ReservationRepository } from './repository.js';

/** The sample's reservation and charge tables (see samples/sql.ts). */
export const RESERVATION_TABLE = 'sample_reservations';
export const CHARGE_TABLE = 'sample_psp_charges';

/** Creates the checkout's tables if missing. */
export async function createCheckoutTables(knex: Knex): Promise<void> {
  if (!(await knex.schema.hasTable(RESERVATION_TABLE))) {
    await knex.schema.createTable(RESERVATION_TABLE, (table) => {
      table.text('order_id').primary();
      table.text('product_id').notNullable();
      table.text('bin_id').notNullable();
      table.integer('qty').notNullable();
    });
  }
  if (!(await knex.schema.hasTable(CHARGE_TABLE))) {
    await knex.schema.createTable(CHARGE_TABLE, (table) => {
      table.text('charge_id').primary();
      table.text('key').notNullable().unique();
      table.text('order_id').notNullable().index();
      table.integer('amount').notNullable();
      table.text('last4').notNullable();
      table.text('status').notNullable();
      table.integer('attempts').notNullable();
      table.timestamp('created_at', { useTz: true }).notNullable();
    });
  }
}

@injectable()
export class SqlReservationRepository implements ReservationRepository {
  constructor(@inject(KnexUnitOfWork) private readonly uow: KnexUnitOfWork) {}
  async add(r: Reservation): Promise<void> {
    const db = await this.uow.db();
    await db(RESERVATION_TABLE).insert({ order_id: r.orderId, product_id: r.productId, bin_id: r.binId, qty: r.qty });
  }
  async take(orderId: string): Promise<Reservation | undefined> {
    const db = await this.uow.db();
    const [row] = await db(RESERVATION_TABLE).where({ order_id: orderId }).delete().returning('*');
    return row && { orderId: row.order_id, productId: row.product_id, binId: row.bin_id, qty: Number(row.qty) };
  }
}

interface ChargeRow {
  charge_id: string;
  key: string;
  order_id: string;
  amount: number;
  last4: string;
  status: ChargeStatus;
  attempts: number;
  created_at: Date | string;
}

@injectable()
export class SqlChargeStore implements ChargeStore {
  constructor(@inject(KNEX) private readonly knex: Knex) {}
  async attempt(key: string, create: () => Charge): Promise<Charge> {
    const c = create();
    const [row] = await this.knex(CHARGE_TABLE)
      .insert({
        charge_id: c.chargeId,
        key,
        order_id: c.orderId,
        amount: c.amount,
        last4: c.last4,
        status: c.status,
        attempts: c.attempts,
        created_at: c.createdAt,
      })
      .onConflict('key')
      .merge({ attempts: this.knex.raw('??.attempts + 1', [CHARGE_TABLE]) })
      .returning('*');
    return toCharge(row as ChargeRow);
  }
  async setStatus(chargeId: string, status: ChargeStatus): Promise<Charge | undefined> {
    const [row] = await this.knex(CHARGE_TABLE).where({ charge_id: chargeId }).update({ status }).returning('*');
    return row && toCharge(row as ChargeRow);
  }
  async byOrder(orderId: string): Promise<Charge[]> {
    const rows = await this.knex<ChargeRow>(CHARGE_TABLE).where({ order_id: orderId }).orderBy('created_at');
    return rows.map(toCharge);
  }
}

function toCharge(row: ChargeRow): Charge {
  return {
    chargeId: row.charge_id,
    key: row.key,
    orderId: row.order_id,
    amount: Number(row.amount),
    last4: row.last4,
    status: row.status,
    attempts: Number(row.attempts),
    createdAt: new Date(row.created_at).toISOString(),
  };
}
