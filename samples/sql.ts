// The sample's own tables and its SQL repositories, bound next to knexModule()'s ports.
import { ContainerModule } from 'inversify';
import type { Knex } from 'knex';
import { KNEX, tables, type TableOptions } from '../adapters/knex/index.js';
import { AUDIT_EXPORT, SqlAuditExport } from './audit/export.js';
import { INVENTORY_REPOSITORY } from './inventory/repository.js';
import { SqlInventoryRepository, STOCK_TABLE } from './inventory/sql-repository.js';
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
  if (!(await knex.schema.hasTable(SALES_TABLE))) {
    await knex.schema.createTable(SALES_TABLE, (table) => {
      table.text('product_id').primary();
      table.integer('paid_orders').notNullable();
      table.integer('paid_qty').notNullable();
    });
  }
}

/**
 * Binds the inventory, order and sales repositories and the audit export to SQL (they need knexModule() loaded).
 * `options` are the `schema` and `prefix` the knexModule() was given, so that the audit export reads the same audit
 * table (through the module's knex, `KNEX`).
 * @example container.load(knexModule({ knex, prefix }), memoryBusModule(), sqlRepositories({ prefix }));
 */
export function sqlRepositories(options: TableOptions = {}): ContainerModule {
  const audit = tables(options).audit;
  return new ContainerModule(({ bind }) => {
    bind(INVENTORY_REPOSITORY).to(SqlInventoryRepository).inSingletonScope();
    bind(ORDER_REPOSITORY).to(SqlOrderRepository).inSingletonScope();
    bind(SALES_REPOSITORY).to(SqlSalesRepository).inSingletonScope();
    bind(AUDIT_EXPORT)
      .toResolvedValue((knex: Knex) => new SqlAuditExport(knex, audit), [KNEX])
      .inSingletonScope();
  });
}
