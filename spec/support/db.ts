// Databases for specs: one PGlite per test run (cold start is seconds), and the machine's Postgres when it answers.
import { randomUUID } from 'node:crypto';
import knex, { type Knex } from 'knex';
import { migrate, pgliteKnex, type TableOptions } from '../../adapters/knex/index.js';
import { DEFAULT_DATABASE_URL, missing, ran, redacted } from './services.js';

let pglite: Promise<Knex> | undefined;
const opened: Knex[] = [];

/** The run's shared PGlite knex (closed by the root hook in spec/support/hooks.ts). */
export function sharedPglite(): Promise<Knex> {
  ran('PGlite');
  return (pglite ??= pgliteKnex().then((db) => {
    opened.push(db);
    return db;
  }));
}

/**
 * A knex on the machine's Postgres (`DATABASE_URL`, else the usual local address), or `undefined` with a message
 * when it does not answer. Under CI=true a missing Postgres throws, so a spec that needs it fails instead of skipping.
 */
export async function postgres(): Promise<Knex | undefined> {
  const url = process.env.DATABASE_URL || DEFAULT_DATABASE_URL;
  const db = knex({ client: 'pg', connection: url, pool: { min: 0, max: 20 }, acquireConnectionTimeout: 10_000 });
  try {
    await db.raw('select 1');
  } catch (error) {
    await db.destroy();
    return missing('Postgres', `cannot reach ${redacted(url)}: ${(error as Error).message}`);
  }
  ran('Postgres');
  opened.push(db);
  return db;
}

/** A fresh schema with the library's tables, so runs and suites never see each other's rows. */
export async function freshSchema(db: Knex): Promise<TableOptions & { schema: string }> {
  const options = { schema: `ucc_${randomUUID().replace(/-/g, '').slice(0, 12)}`, prefix: 'ucc_' };
  await migrate(db, options);
  return options;
}

/** Drops a schema made by `freshSchema`. */
export async function dropSchema(db: Knex, schema: string): Promise<void> {
  await db.raw('DROP SCHEMA IF EXISTS ?? CASCADE', [schema]);
}

/** Closes every database this run opened. */
export async function closeDatabases(): Promise<void> {
  await Promise.all(opened.splice(0).map((db) => db.destroy()));
  pglite = undefined;
}
