// What the CLI specs share: the CLI run as a process, and the Postgres schema the cases of "on Postgres" run against.
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import type { Knex } from 'knex';
import { tables, type Tables } from '../../../adapters/knex/index.js';
import { dropSchema, freshSchema, postgres } from '../../support/db.js';
import { runToEnd } from '../../support/processes.js';

export const MAIN = fileURLToPath(new URL('../../../adapters/cli/main.ts', import.meta.url));

/** Runs `usecasecore ...args` to its end. */
export const cli = (args: readonly string[], env: Record<string, string | undefined> = {}) =>
  runToEnd(MAIN, args, { UCC_SCHEMA: '', UCC_PREFIX: '', ...env });

/** The machine's Postgres, its URL, the case's schema and its tables: set by the hooks below, read in the cases. */
export let db: Knex, url: string, schema: string, t: Tables;

/** Runs `usecasecore ...args` on the case's schema, to its end. */
export const run = (...args: string[]) => cli([...args, '--schema', schema], { DATABASE_URL: url });

/** For "on Postgres": skips without Postgres, and drops the case's schema after each case. */
export function usePostgres(): void {
  before(async function () {
    const found = await postgres();
    if (!found) return this.skip();
    db = found;
    url = process.env.DATABASE_URL!;
  });
  afterEach(async () => {
    if (db && schema) await dropSchema(db, schema);
  });
}

/** A schema name of its own for each case, with nothing in it yet. */
export function useNewSchemaName(): void {
  beforeEach(() => {
    schema = `ucc_cli_${randomUUID().slice(0, 8)}`;
  });
}

/** A schema of its own with the library's tables for each case. */
export function useTables(): void {
  beforeEach(async () => {
    ({ schema } = await freshSchema(db));
    t = tables({ schema });
  });
}
