// Chooses the sample's adapters from the environment: Postgres when DATABASE_URL is set, else embedded PGlite.
import { Container } from 'inversify';
import knex, { type Knex } from 'knex';
import { AmqpConnection, amqpModule } from '../adapters/amqp/index.js';
import { knexModule, migrate, pgliteKnex } from '../adapters/knex/index.js';
import { memoryBusModule } from '../adapters/memory/index.js';
import { createSampleTables, sqlRepositories } from './sql.js';

/** A container with every port and repository bound, what it uses (for the start-up line), and how to close it. */
export interface Backend {
  readonly container: Container;
  readonly description: string;
  close(): Promise<void>;
}

/**
 * The sample's backend for these variables: `DATABASE_URL` (Postgres; else PGlite, in memory unless `PGLITE_DIR`
 * names a folder to keep it in) and `AMQP_URL` (RabbitMQ; else the in-process bus). The library's and the
 * sample's tables are created if missing.
 * @example const { container, description } = await backendFromEnv(process.env);
 */
export async function backendFromEnv(env: Readonly<Record<string, string | undefined>>): Promise<Backend> {
  const url = env.DATABASE_URL;
  const db: Knex = url
    ? knex({ client: 'pg', connection: url, pool: { min: 1, max: 10 }, acquireConnectionTimeout: 10_000 })
    : await pgliteKnex(env.PGLITE_DIR ? { dataDir: env.PGLITE_DIR } : {});
  await migrate(db);
  await createSampleTables(db);
  const container = new Container();
  const amqpUrl = env.AMQP_URL;
  container.load(
    knexModule({ knex: db }),
    amqpUrl ? amqpModule({ url: amqpUrl }) : memoryBusModule(),
    sqlRepositories(),
  );
  const bus = amqpUrl ? `RabbitMQ at ${amqpUrl.replace(/\/\/[^@/]*@/, '//')}` : 'memory (in-process)';
  const database = url
    ? `Postgres at ${url.replace(/\/\/[^@/]*@/, '//')}`
    : `PGlite (embedded, ${env.PGLITE_DIR ? `files in ${env.PGLITE_DIR}` : 'in memory — set PGLITE_DIR to keep data'})`;
  return {
    container,
    description: `database: ${database}, bus: ${bus}`,
    close: async () => {
      if (amqpUrl) await container.get(AmqpConnection).close();
      await db.destroy();
    },
  };
}
