// Chooses the sample's adapters from the environment: Postgres when DATABASE_URL is set, else embedded PGlite;
// RabbitMQ when AMQP_URL is set, else the in-process bus.
import { Container } from 'inversify';
import knex, { type Knex } from 'knex';
import { AmqpConnection, amqpModule } from '../adapters/amqp/index.js';
import { knexModule, migrate, pgliteKnex } from '../adapters/knex/index.js';
import { memoryBusModule } from '../adapters/memory/index.js';
import { createSampleTables, sqlRepositories } from './sql.js';

/** The `application_name` of the sample's Postgres sessions unless `PGAPPNAME` names another. */
export const DEFAULT_APPLICATION_NAME = 'usecasecore-sample';

/** A container with every port and repository bound, what it uses (for the start-up line), and how to close it. */
export interface Backend {
  readonly container: Container;
  readonly description: string;
  /** The broker queue name of one of the sample's consumers (`sales` → `usecasecore.sample.sales`). */
  queue(name: string): string;
  /** Closes the broker connection (a no-op on the in-process bus): unacked deliveries go back to the broker. */
  closeBus(): Promise<void>;
  /** Closes the database pool. */
  closeDatabase(): Promise<void>;
  /** Closes the broker connection, then the database pool. */
  close(): Promise<void>;
}

/**
 * The sample's backend for these variables:
 * - `DATABASE_URL`: Postgres; else PGlite, in memory unless `PGLITE_DIR` names a folder to keep it in.
 * - `UCC_SCHEMA`: the Postgres schema of every table, the library's and the sample's (created if missing; default:
 *   the connection's search path). `UCC_PREFIX`: the prefix of the library's tables (default `ucc_`). The same
 *   variables the `usecasecore` CLI reads, so `usecasecore outbox status` sees what the service writes.
 * - `PGAPPNAME`: the sessions' `application_name` (default `usecasecore-sample`), to find them in `pg_stat_activity`.
 * - `AMQP_URL`: RabbitMQ; else the in-process bus. `AMQP_PREFIX`: the prefix of the exchanges (`<prefix>.events`,
 *   `.jobs`, `.dead`) and of the sample's queues (`<prefix>.sample.<name>`); default `usecasecore`.
 * The library's and the sample's tables are created if missing.
 * @example const { container, description } = await backendFromEnv(process.env);
 */
export async function backendFromEnv(env: Readonly<Record<string, string | undefined>>): Promise<Backend> {
  const url = env.DATABASE_URL;
  const schema = env.UCC_SCHEMA || undefined;
  const prefix = env.UCC_PREFIX || undefined;
  const db: Knex = url
    ? knex({
        client: 'pg',
        connection: { connectionString: url, application_name: env.PGAPPNAME || DEFAULT_APPLICATION_NAME },
        // Unqualified names (the library's tables, and the sample's own) resolve in UCC_SCHEMA.
        ...(schema ? { searchPath: [schema] } : {}),
        pool: { min: 1, max: 10 },
        acquireConnectionTimeout: 10_000,
      })
    : await pgliteKnex(env.PGLITE_DIR ? { dataDir: env.PGLITE_DIR } : {});
  if (schema) await db.raw('CREATE SCHEMA IF NOT EXISTS ??', [schema]);
  if (schema && !url) await db.raw('SET search_path TO ??', [schema]); // PGlite: its one session
  await migrate(db, { prefix });
  await createSampleTables(db);
  const container = new Container();
  const amqpUrl = env.AMQP_URL;
  const amqpPrefix = env.AMQP_PREFIX || 'usecasecore';
  container.load(
    knexModule({ knex: db, prefix }),
    amqpUrl
      ? amqpModule({
          url: amqpUrl,
          exchanges: { events: `${amqpPrefix}.events`, jobs: `${amqpPrefix}.jobs`, dead: `${amqpPrefix}.dead` },
          relay: { onError: throttledLog('relay (retrying by itself)') },
          // Quorum queues (the default); UCC_QUEUE_TYPE=classic keeps the classic queues of an earlier version.
          ...(env.UCC_QUEUE_TYPE === 'classic' ? { queueType: 'classic' as const } : {}),
        })
      : memoryBusModule(),
    sqlRepositories({ prefix, charges: url ? 'sql' : 'memory' }),
  );
  const bus = amqpUrl
    ? `RabbitMQ at ${amqpUrl.replace(/\/\/[^@/]*@/, '//')}` + (env.AMQP_PREFIX ? ` (prefix ${amqpPrefix})` : '')
    : 'memory (in-process)';
  const kept = env.PGLITE_DIR ? `files in ${env.PGLITE_DIR}` : 'in memory — set PGLITE_DIR to keep data';
  const pglite = `PGlite (embedded, ${kept})`;
  const database =
    (url ? `Postgres at ${url.replace(/\/\/[^@/]*@/, '//')}` : pglite) + (schema ? ` (schema ${schema})` : '');
  const closeBus = async () => {
    if (amqpUrl) await container.get(AmqpConnection).close();
  };
  return {
    container,
    description: `database: ${database}, bus: ${bus}`,
    queue: (name) => (amqpUrl ? `${amqpPrefix}.sample.${name}` : `sample.${name}`),
    closeBus,
    closeDatabase: () => db.destroy(),
    close: async () => {
      await closeBus();
      await db.destroy();
    },
  };
}

/**
 * A listener for failures a component recovers from by itself (the relay while the broker is away): the first is
 * printed at once, the rest at most once per 10 s with how many there were, so an outage does not flood the log.
 */
export function throttledLog(label: string, log: (line: string) => void = console.error): (error: unknown) => void {
  let last = -Infinity;
  let skipped = 0;
  return (error) => {
    const now = Date.now();
    if (now - last < 10_000) {
      skipped++;
      return;
    }
    const more = skipped > 0 ? ` (${skipped} more since the last report)` : '';
    log(`${label}: ${error instanceof Error ? error.message : String(error)}${more}`);
    last = now;
    skipped = 0;
  };
}
