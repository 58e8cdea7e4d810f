// The sample's own tables and its SQL repositories, bound next to knexModule()'s ports.
import { ContainerModule } from 'inversify';
import type { Knex } from 'knex';
import { KNEX, tables, type TableOptions } from '../adapters/knex/index.js';
import { AUDIT_EXPORT, SqlAuditExport } from './audit/export.js';
import { INVENTORY_REPOSITORY, LOW_STOCK_ALERT_REPOSITORY, MOVEMENT_REPOSITORY } from './inventory/repository.js';
import {
  LOW_STOCK_ALERT_TABLE,
  MOVEMENT_TABLE,
  SqlInventoryRepository,
  SqlLowStockAlertRepository,
  SqlMovementRepository,
  STOCK_TABLE,
} from './inventory/sql-repository.js';
import {
  CHARGE_STORE,
  createCheckoutTables,
  MemoryChargeStore,
  RESERVATION_REPOSITORY,
  SqlChargeStore,
  SqlReservationRepository,
} from './checkout/index.js';
import { ORDER_REPOSITORY } from './orders/repository.js';
import { ORDER_TABLE, SqlOrderRepository } from './orders/sql-repository.js';
import { SALES_REPOSITORY } from './sales/repository.js';
import { SALES_TABLE, SqlSalesRepository } from './sales/sql-repository.js';

/**
 * Creates the sample's tables if missing (usecasecore does not manage your schema; this is the sample's own).
 * @example await migrate(knex); await createSampleTables(knex);
 */
export async function createSampleTables(knex: Knex): Promise<void> {
  if (!(await knex.schema.hasTable(STOCK_TABLE))) {
    await knex.schema.createTable(STOCK_TABLE, (table) => {
      table.text('product_id').notNullable();
      table.text('bin_id').notNullable();
      table.integer('qty').notNullable();
      table.primary(['product_id', 'bin_id']);
      table.check('?? >= 0', ['qty'], `${STOCK_TABLE}_qty_never_negative`); // even if a handler had a bug
    });
  }
  if (!(await knex.schema.hasTable(MOVEMENT_TABLE))) {
    await knex.schema.createTable(MOVEMENT_TABLE, (table) => {
      table.bigIncrements('position'); // the order they were written: newest first is position descending
      table.uuid('movement_id').notNullable().unique();
      table.text('product_id').notNullable();
      table.text('from_bin_id').notNullable();
      table.text('to_bin_id').notNullable();
      table.integer('qty').notNullable();
      table.integer('source_qty_after').notNullable();
      table.integer('dest_qty_after').notNullable();
      table.text('actor');
      table.text('reason').notNullable();
      table.timestamp('at', { useTz: true }).notNullable();
      table.index(['product_id', 'position'], `${MOVEMENT_TABLE}_product_newest`);
    });
  }
  if (!(await knex.schema.hasTable(LOW_STOCK_ALERT_TABLE))) {
    await knex.schema.createTable(LOW_STOCK_ALERT_TABLE, (table) => {
      table.bigIncrements('position');
      table.uuid('alert_id').notNullable().unique();
      table.text('job_id').notNullable().unique(); // one alert per LowStockAlert job, however often it is delivered
      table.uuid('movement_id').notNullable();
      table.text('product_id').notNullable();
      table.text('bin_id').notNullable();
      table.integer('qty').notNullable();
      table.integer('threshold').notNullable();
      table.timestamp('at', { useTz: true }).notNullable();
      table.index(['product_id', 'position'], `${LOW_STOCK_ALERT_TABLE}_product_newest`);
    });
  }
  if (!(await knex.schema.hasTable(ORDER_TABLE))) {
    await knex.schema.createTable(ORDER_TABLE, (table) => {
      table.text('order_id').primary();
      table.text('status').notNullable();
      table.text('product_id').notNullable();
      table.text('bin_id').notNullable();
      table.integer('qty').notNullable();
      table.text('owner').notNullable();
    });
  }
  await createCheckoutTables(knex);
  if (!(await knex.schema.hasTable(SALES_TABLE))) {
    await knex.schema.createTable(SALES_TABLE, (table) => {
      table.text('product_id').primary();
      table.integer('paid_orders').notNullable();
      table.integer('paid_qty').notNullable();
    });
  }
}

/**
 * Binds the inventory (stock, movements, low-stock alerts), order and sales repositories and the audit export to
 * SQL (they need knexModule() loaded), with the checkout's reservations and the stand-in provider's charges
 * (`charges: 'memory'` keeps those in memory: on PGlite). `options` are the `schema` and `prefix` the knexModule() was
 * given, so that the audit export reads the same audit table (through the module's knex, `KNEX`).
 * @example container.load(knexModule({ knex, prefix }), memoryBusModule(), sqlRepositories({ prefix }));
 */
export function sqlRepositories(options: TableOptions & { charges?: 'sql' | 'memory' } = {}): ContainerModule {
  const audit = tables(options).audit;
  return new ContainerModule(({ bind }) => {
    bind(RESERVATION_REPOSITORY).to(SqlReservationRepository).inSingletonScope();
    // On PGlite (one connection) the provider, called from inside a step's transaction, could not write beside it.
    bind(CHARGE_STORE)
      .to(options.charges === 'memory' ? MemoryChargeStore : SqlChargeStore)
      .inSingletonScope();
    bind(INVENTORY_REPOSITORY).to(SqlInventoryRepository).inSingletonScope();
    bind(MOVEMENT_REPOSITORY).to(SqlMovementRepository).inSingletonScope();
    bind(LOW_STOCK_ALERT_REPOSITORY).to(SqlLowStockAlertRepository).inSingletonScope();
    bind(ORDER_REPOSITORY).to(SqlOrderRepository).inSingletonScope();
    bind(SALES_REPOSITORY).to(SqlSalesRepository).inSingletonScope();
    bind(AUDIT_EXPORT)
      .toResolvedValue((knex: Knex) => new SqlAuditExport(knex, audit), [KNEX])
      .inSingletonScope();
  });
}
