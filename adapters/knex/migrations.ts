// The migrations of the library's tables, in order: run (`migrate`), or read without running (`pendingMigrations`).
import type { Knex } from 'knex';
import { tables, type TableOptions, type Tables } from './tables.js';

/** One statement of a migration: built, not yet run (await it to run it, `.toString()` to print it). */
type Statement = Knex.SchemaBuilder | Knex.Raw;

/** The migrations in order: each yields its statements, so they can be run or printed (`migrate --dry-run`). */
function steps(t: Tables, schemaName: string | undefined): Record<string, (knex: Knex) => Statement[]> {
  const bare = (qualified: string) => qualified.split('.').pop()!; // knex names constraints after the table: no dots
  return {
    '001_core': (knex) => {
      const schema = () => (schemaName ? knex.schema.withSchema(schemaName) : knex.schema);
      return [
        schema().createTable(bare(t.idempotency), (table) => {
          table.text('scope').notNullable();
          table.text('key').notNullable();
          table.text('fingerprint').notNullable();
          table.text('token').notNullable();
          table.bigInteger('lease_until').notNullable();
          table.text('response');
          table.bigInteger('expires_at');
          table.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
          table.primary(['scope', 'key']);
        }),
        schema().createTable(bare(t.auditHeads), (table) => {
          table.text('tenant').primary();
          table.integer('seq').notNullable();
          table.text('hash').notNullable();
        }),
        schema().createTable(bare(t.audit), (table) => {
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
        }),
        schema().createTable(bare(t.outbox), (table) => {
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
        }),
        knex.raw(`CREATE INDEX ?? ON ?? (position) WHERE sent_at IS NULL AND parked_at IS NULL`, [
          `${bare(t.outbox)}_unsent`,
          t.outbox,
        ]),
        schema().createTable(bare(t.inbox), (table) => {
          table.text('consumer').notNullable();
          table.text('message_id').notNullable();
          table.timestamp('processed_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
          table.primary(['consumer', 'message_id']);
        }),
      ];
    },
    // The audit store numbers and hashes records in one statement, and reads the previous hash from the head.
    '002_audit_head_prev_hash': (knex) => [knex.raw('ALTER TABLE ?? ADD COLUMN prev_hash text', [t.auditHeads])],
    // A claim checks "no earlier unsent row of this aggregate": a lookup with this index, not a scan of the backlog.
    '003_outbox_unsent_by_aggregate': (knex) => [
      knex.raw(
        `CREATE INDEX ?? ON ?? (aggregate_id, position)
                WHERE sent_at IS NULL AND parked_at IS NULL AND aggregate_id IS NOT NULL`,
        [`${bare(t.outbox)}_unsent_by_aggregate`, t.outbox],
      ),
    ],
    // Retention's batched deletes find old rows by index, not by scanning the table. IF NOT EXISTS: on a large table,
    // create them CONCURRENTLY by hand first, under these names.
    '004_retention_indexes': (knex) => {
      const index = (table: string, column: string, definition: string) =>
        knex.raw(`CREATE INDEX IF NOT EXISTS ?? ON ?? ${definition}`, [`${bare(table)}_${column}`, table]);
      return [
        index(t.outbox, 'sent_at', '(sent_at) WHERE sent_at IS NOT NULL'),
        index(t.inbox, 'processed_at', '(processed_at)'),
        index(t.idempotency, 'expires_at', '(expires_at) WHERE response IS NOT NULL'),
      ];
    },
    // Appends insert unchained records (seq, prev_hash and hash NULL) with their commit; the sealer chains them
    // afterwards, in commit order, so one tenant's commits never wait on its head row. Existing rows stay sealed.
    '005_audit_sealed_after_commit': (knex) => [
      knex.raw(
        `ALTER TABLE ?? ALTER COLUMN seq DROP NOT NULL, ALTER COLUMN prev_hash DROP NOT NULL,
           ALTER COLUMN hash DROP NOT NULL`,
        [t.audit],
      ),
      knex.raw('CREATE INDEX ?? ON ?? (position) WHERE seq IS NULL', [`${bare(t.audit)}_unsealed`, t.audit]),
    ],
    // A key is claimed in the business transaction, so a claim commits with its result or vanishes: no lease, no
    // fencing token. (A committed row without a result is a claim of an older version; the reaper removes it.)
    '006_idempotency_claim_in_transaction': (knex) => [
      knex.raw('ALTER TABLE ?? DROP COLUMN token, DROP COLUMN lease_until', [t.idempotency]),
    ],
    // Why a send failed (a denial's reason…). Nullable, no default: existing rows keep null, which the chain reads as
    // an absent reason, so they hash as they did and sealed chains still verify.
    '007_audit_reason': (knex) => [knex.raw('ALTER TABLE ?? ADD COLUMN reason text', [t.audit])],
    // Jobs with handles: a delayed job's outbox row waits for `available_at`; each job's life is a row of `jobs`.
    '008_jobs': (knex) => [
      knex.raw('ALTER TABLE ?? ADD COLUMN available_at timestamptz(3)', [t.outbox]),
      knex.raw(
        `CREATE TABLE ?? (
           id text PRIMARY KEY,
           type text NOT NULL,
           queue text NOT NULL,
           tenant text NOT NULL,
           key text,
           state text NOT NULL,
           attempts integer NOT NULL DEFAULT 0,
           result jsonb,
           failure jsonb,
           enqueued_at timestamptz(3) NOT NULL,
           run_at timestamptz(3) NOT NULL,
           started_at timestamptz(3),
           settled_at timestamptz(3))`,
        [t.jobs],
      ),
      knex.raw('CREATE INDEX ?? ON ?? (settled_at) WHERE settled_at IS NOT NULL', [
        `${bare(t.jobs)}_settled_at`,
        t.jobs,
      ]),
    ],
    '009_processes': (knex) => [
      knex.raw(
        `CREATE TABLE ?? (
           id text PRIMARY KEY,
           type text NOT NULL,
           tenant text NOT NULL,
           actor jsonb,
           state text NOT NULL,
           input jsonb,
           failure jsonb,
           deadline_at timestamptz(3),
           started_at timestamptz(3) NOT NULL,
           updated_at timestamptz(3) NOT NULL,
           ended_at timestamptz(3),
           trace jsonb)`,
        [t.processes],
      ),
      knex.raw('CREATE INDEX ?? ON ?? (tenant, started_at DESC)', [`${bare(t.processes)}_by_tenant`, t.processes]),
      knex.raw('CREATE INDEX ?? ON ?? (ended_at) WHERE ended_at IS NOT NULL', [
        `${bare(t.processes)}_ended_at`,
        t.processes,
      ]),
      knex.raw(
        `CREATE TABLE ?? (
           process_id text NOT NULL REFERENCES ?? (id) ON DELETE CASCADE,
           index integer NOT NULL,
           name text NOT NULL,
           state text NOT NULL,
           attempts integer NOT NULL DEFAULT 0,
           compensations integer NOT NULL DEFAULT 0,
           result jsonb,
           failure jsonb,
           started_at timestamptz(3),
           settled_at timestamptz(3),
           PRIMARY KEY (process_id, index))`,
        [t.processSteps, t.processes],
      ),
      knex.raw(
        `CREATE TABLE ?? (
           event text NOT NULL,
           key text NOT NULL,
           process_id text,
           step integer,
           arrived boolean NOT NULL,
           payload jsonb,
           PRIMARY KEY (event, key))`,
        [t.processWaits],
      ),
    ],
    // Events kept for a wait to come are purged with the ended processes: when each arrived.
    '010_process_waits_arrived_at': (knex) => [
      knex.raw('ALTER TABLE ?? ADD COLUMN arrived_at timestamptz(3)', [t.processWaits]),
      knex.raw('CREATE INDEX ?? ON ?? (arrived_at) WHERE arrived', [
        `${bare(t.processWaits)}_arrived_at`,
        t.processWaits,
      ]),
    ],
    // A claim walks rows due now by position and scheduled rows by due time, each line by its own index, so rows
    // scheduled far ahead are never walked past. IF NOT EXISTS: on a large table, create them CONCURRENTLY by hand
    // first, under these names; then this drops the index they replace.
    '011_outbox_scheduled_apart': (knex) => [
      knex.raw(
        'CREATE INDEX IF NOT EXISTS ?? ON ?? (position) WHERE sent_at IS NULL AND parked_at IS NULL AND available_at IS NULL',
        [`${bare(t.outbox)}_due_now`, t.outbox],
      ),
      knex.raw(
        `CREATE INDEX IF NOT EXISTS ?? ON ?? (available_at, position)
                WHERE sent_at IS NULL AND parked_at IS NULL AND available_at IS NOT NULL`,
        [`${bare(t.outbox)}_scheduled`, t.outbox],
      ),
      knex.raw('DROP INDEX IF EXISTS ??', [`${t.outbox}_unsent`]), // in the table's schema: the qualified name
    ],
  };
}

function source(t: Tables, schemaName: string | undefined): Knex.MigrationSource<string> {
  const all = steps(t, schemaName);
  return {
    getMigrations: async () => Object.keys(all),
    getMigrationName: (name) => name,
    getMigration: async (name) => ({
      up: async (knex: Knex) => {
        for (const statement of all[name]!(knex)) await statement;
      },
      down: async () => undefined,
    }),
  };
}

/** A migration not yet applied, with the SQL it would run. */
export interface PendingMigration {
  readonly name: string;
  readonly sql: readonly string[];
}

/**
 * The migrations not yet applied and their SQL, read without changing the database (no migrations table is
 * created). The first entry creates the schema when it is missing.
 * @example for (const m of await pendingMigrations(knex, { schema: 'app' })) console.log(m.name, m.sql.join(';\n'));
 */
export async function pendingMigrations(knex: Knex, options: TableOptions = {}): Promise<PendingMigration[]> {
  const t = tables(options);
  const pending: PendingMigration[] = [];
  const schemaExists =
    options.schema === undefined ||
    (await knex('information_schema.schemata').where({ schema_name: options.schema }).first()) !== undefined;
  if (!schemaExists) {
    pending.push({ name: 'create_schema', sql: [knex.schema.createSchemaIfNotExists(options.schema!).toString()] });
  }
  const history = options.schema ? knex.schema.withSchema(options.schema) : knex.schema;
  const applied = new Set<string>();
  if (schemaExists && (await history.hasTable(t.migrations))) {
    const from = options.schema ? `${options.schema}.${t.migrations}` : t.migrations;
    for (const row of await knex(from).select('name')) applied.add(row.name as string);
  }
  for (const [name, step] of Object.entries(steps(t, options.schema))) {
    if (!applied.has(name)) pending.push({ name, sql: step(knex).map((statement) => statement.toString()) });
  }
  return pending;
}

/**
 * Creates or upgrades the library's tables. Safe to run from several processes at once (knex locks its migrations).
 * @example await migrate(knex, { schema: 'app', prefix: 'ucc_' })   // or: npm run migrate
 */
export async function migrate(knex: Knex, options: TableOptions = {}): Promise<void> {
  const t = tables(options);
  if (options.schema) await knex.schema.createSchemaIfNotExists(options.schema);
  await knex.migrate.latest({
    migrationSource: source(t, options.schema),
    tableName: t.migrations,
    ...(options.schema ? { schemaName: options.schema } : {}),
  });
}
