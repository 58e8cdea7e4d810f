// The sample's mediator on a Postgres schema of its own, shared by the specs and their child processes.
import 'reflect-metadata';
import { Container } from 'inversify';
import knex, { type Knex } from 'knex';
import { knexModule, migrate } from '../../adapters/knex/index.js';
import { memoryBusModule } from '../../adapters/memory/index.js';
import { createMediator, type Mediator, type Middleware } from '../../lib/core/index.js';
import { audit, idempotency, policy, publish, transition, unitOfWork, validation } from '../../middleware/index.js';
import { FEATURES } from '../../samples/app.js';
import { createSampleTables, sqlRepositories } from '../../samples/sql.js';

/** Options for the sample mediator under test. */
export interface SampleDbOptions {
  readonly waitMs?: number;
  /** Middleware appended innermost (after publish), e.g. to hang or to cut the connection mid-transaction. */
  readonly inner?: readonly Middleware[];
  readonly pool?: number;
}

/** A knex whose unqualified names resolve in `schema` (created by the caller with `createSchema`). */
export function scopedKnex(url: string, schema: string, pool = 10): Knex {
  return knex({
    client: 'pg',
    connection: url,
    searchPath: [schema],
    pool: { min: 0, max: pool },
    acquireConnectionTimeout: 10_000,
  });
}

/** Creates a schema with the library's and the sample's tables. */
export async function createSchema(url: string, schema: string): Promise<void> {
  const admin = knex({ client: 'pg', connection: url, pool: { min: 0, max: 1 } });
  try {
    await admin.raw('CREATE SCHEMA IF NOT EXISTS ??', [schema]);
  } finally {
    await admin.destroy();
  }
  const db = scopedKnex(url, schema, 1);
  try {
    await migrate(db);
    await createSampleTables(db);
  } finally {
    await db.destroy();
  }
}

/** The sample's handlers and rules behind the full stack, on `schema`. */
export function sampleOnPostgres(
  url: string,
  schema: string,
  options: SampleDbOptions = {},
): { db: Knex; container: Container; mediator: Mediator } {
  const db = scopedKnex(url, schema, options.pool);
  const container = new Container();
  container.load(knexModule({ knex: db }), memoryBusModule(), sqlRepositories());
  const idem = idempotency({ waitMs: options.waitMs ?? 2_000 });
  const mediator = createMediator(container, {
    handlers: FEATURES.flatMap((f) => f.handlers),
    middleware: [
      validation(),
      unitOfWork(),
      audit(),
      idem,
      policy(FEATURES.flatMap((f) => f.rules)),
      transition(FEATURES.flatMap((f) => f.guards ?? [])),
      publish(),
      ...(options.inner ?? []),
    ],
  });
  return { db, container, mediator };
}
