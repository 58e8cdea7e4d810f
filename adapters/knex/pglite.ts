// Embedded Postgres (PGlite) behind knex, for a machine with no database server. knex-pglite is an optional peer.
import knex, { type Knex } from 'knex';

/**
 * A knex instance on PGlite: in memory, or in `dataDir` when given. PGlite has one connection, so a query on the
 * root knex while a transaction is open waits for it: always query through `uow.db()`.
 * @example const db = await pgliteKnex({ dataDir: '.pglite' }); await migrate(db);
 */
export async function pgliteKnex(options: { dataDir?: string } = {}): Promise<Knex> {
  const { default: ClientPgLite } = await import('knex-pglite');
  return knex({
    client: ClientPgLite,
    dialect: 'postgres',
    connection: options.dataDir ? { filename: options.dataDir } : {},
    acquireConnectionTimeout: 15_000,
  } as Knex.Config);
}
