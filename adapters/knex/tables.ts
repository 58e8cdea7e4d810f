// The library's own tables and their migrations (schema and prefix configurable).
import type { Knex } from 'knex';

/** Where the library's tables live. */
export interface TableOptions {
  /** A Postgres schema (created if missing). Default: the connection's search path. */
  readonly schema?: string | undefined;
  /** A prefix for every table name. Default `ucc_`. */
  readonly prefix?: string | undefined;
}

/** Qualified names of the library's tables. */
export interface Tables {
  readonly idempotency: string;
  readonly audit: string;
  readonly auditHeads: string;
  readonly outbox: string;
  readonly inbox: string;
  readonly migrations: string;
}

/** The qualified table names for these options. */
export function tables(options: TableOptions = {}): Tables {
  const prefix = options.prefix ?? 'ucc_';
  const name = (table: string) => (options.schema ? `${options.schema}.${prefix}${table}` : `${prefix}${table}`);
  return {
    idempotency: name('idempotency'), audit: name('audit'), auditHeads: name('audit_heads'),
    outbox: name('outbox'), inbox: name('inbox'), migrations: `${prefix}migrations`,
  };
}

function source(t: Tables, schemaName: string | undefined): Knex.MigrationSource<string> {
  const bare = (qualified: string) => qualified.split('.').pop()!; // knex names constraints after the table: no dots
  const steps: Record<string, (knex: Knex) => Promise<void>> = {
    '001_core': async (knex) => {
      const schema = () => (schemaName ? knex.schema.withSchema(schemaName) : knex.schema);
      await schema().createTable(bare(t.idempotency), (table) => {
        table.text('scope').notNullable();
        table.text('key').notNullable();
        table.text('fingerprint').notNullable();
        table.text('token').notNullable();
        table.bigInteger('lease_until').notNullable();
        table.text('response');
        table.bigInteger('expires_at');
        table.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
        table.primary(['scope', 'key']);
      });
      await schema().createTable(bare(t.auditHeads), (table) => {
        table.text('tenant').primary();
        table.integer('seq').notNullable();
        table.text('hash').notNullable();
      });
      await schema().createTable(bare(t.audit), (table) => {
        table.bigIncrements('position');
        table.text('tenant').notNullable();
        table.integer('seq').notNullable();
        table.text('id').notNullable().unique();
        table.timestamp('at', { useTz: true, precision: 3 }).notNullable();
        table.text('actor');
        table.text('type').notNullable();
        table.text('request_id').notNullable();
        table.text('outcome').notNullable();
        table.text('code');
        table.boolean('replayed');
        table.jsonb('payload').notNullable();
        table.text('prev_hash').notNullable();
        table.text('hash').notNullable();
        table.unique(['tenant', 'seq']);
      });
      await schema().createTable(bare(t.outbox), (table) => {
        table.bigIncrements('position');
        table.text('id').notNullable().unique();
        table.text('kind').notNullable();
        table.text('type').notNullable();
        table.jsonb('payload').notNullable();
        table.timestamp('occurred_at', { useTz: true, precision: 3 }).notNullable();
        table.text('aggregate_id');
        table.jsonb('headers').notNullable();
        table.integer('attempts').notNullable().defaultTo(0);
        table.bigInteger('claimed_until');
        table.text('last_error');
        table.timestamp('sent_at', { useTz: true });
        table.timestamp('parked_at', { useTz: true });
      });
      await knex.raw(`CREATE INDEX ?? ON ?? (position) WHERE sent_at IS NULL AND parked_at IS NULL`, [`${bare(t.outbox)}_unsent`, t.outbox]);
      await schema().createTable(bare(t.inbox), (table) => {
        table.text('consumer').notNullable();
        table.text('message_id').notNullable();
        table.timestamp('processed_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
        table.primary(['consumer', 'message_id']);
      });
    },
    // The audit store numbers and hashes records in one statement, and reads the previous hash from the head.
    '002_audit_head_prev_hash': async (knex) => {
      await knex.raw('ALTER TABLE ?? ADD COLUMN prev_hash text', [t.auditHeads]);
    },
    // A claim checks "no earlier unsent row of this aggregate": a lookup with this index, not a scan of the backlog.
    '003_outbox_unsent_by_aggregate': async (knex) => {
      await knex.raw('CREATE INDEX ?? ON ?? (aggregate_id, position) WHERE sent_at IS NULL AND parked_at IS NULL AND aggregate_id IS NOT NULL',
        [`${bare(t.outbox)}_unsent_by_aggregate`, t.outbox]);
    },
  };
  return {
    getMigrations: async () => Object.keys(steps),
    getMigrationName: (name) => name,
    getMigration: async (name) => ({ up: steps[name]!, down: async () => undefined }),
  };
}

/**
 * Creates or upgrades the library's tables. Safe to run from several processes at once (knex locks its migrations).
 * @example await migrate(knex, { schema: 'app', prefix: 'ucc_' })   // or: npm run migrate
 */
export async function migrate(knex: Knex, options: TableOptions = {}): Promise<void> {
  const t = tables(options);
  if (options.schema) await knex.schema.createSchemaIfNotExists(options.schema);
  await knex.migrate.latest({ migrationSource: source(t, options.schema), tableName: t.migrations, ...(options.schema ? { schemaName: options.schema } : {}) });
}
