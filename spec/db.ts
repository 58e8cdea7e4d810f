// Databases for specs: one PGlite per test run (cold start is seconds), and the machine's Postgres when reachable.
import { randomUUID } from 'node:crypto';
import knex, { type Knex } from 'knex';
import { migrate, pgliteKnex, type TableOptions } from '../adapters/knex/index.js';

let pglite: Promise<Knex> | undefined;
const opened: Knex[] = [];

/** The run's shared PGlite knex (closed by the root hook in spec/hooks.ts). */
export function sharedPglite(): Promise<Knex> {
  return (pglite ??= pgliteKnex().then((db) => {
    opened.push(db);
    return db;
  }));
}

/**
 * A knex on the machine's Postgres (`DATABASE_URL`), or `undefined` with a message when it is not set or not
 * reachable. Under CI=true a missing Postgres throws, so a spec that needs it fails instead of skipping.
 */
export async function postgres(): Promise<Knex | undefined> {
  const url = process.env.DATABASE_URL;
  const missing = (why: string) => {
    if (process.env.CI === 'true') throw new Error(`Postgres is required under CI=true: ${why}`);
    console.warn(
      `    (skipping Postgres specs: ${why} — start it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start; export DATABASE_URL=postgres://postgres@127.0.0.1:5432/test)`,
    );
    return undefined;
  };
  if (!url) return missing('DATABASE_URL is not set');
  const db = knex({ client: 'pg', connection: url, pool: { min: 0, max: 20 }, acquireConnectionTimeout: 10_000 });
  try {
    await db.raw('select 1');
  } catch (error) {
    await db.destroy();
    return missing(`cannot reach ${url.replace(/\/\/[^@]*@/, '//')}: ${(error as Error).message}`);
  }
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
