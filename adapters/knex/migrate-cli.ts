// `npm run migrate`: creates or upgrades the library's tables in DATABASE_URL (schema/prefix from UCC_SCHEMA/UCC_PREFIX).
import knex from 'knex';
import { migrate, tables } from './tables.js';

const url = process.env.DATABASE_URL;
if (!url) {
  console.error('Set DATABASE_URL (e.g. postgres://postgres@127.0.0.1:5432/test) to say which database to migrate');
  process.exit(2);
}
const options = { schema: process.env.UCC_SCHEMA || undefined, prefix: process.env.UCC_PREFIX || undefined };
const db = knex({ client: 'pg', connection: url, pool: { min: 0, max: 1 } });
try {
  await migrate(db, options);
  console.log(`usecasecore tables ready: ${Object.values(tables(options)).join(', ')}`);
} finally {
  await db.destroy();
}
