// The names of the library's own tables (schema and prefix configurable); migrations.ts creates them.
import { UseCaseError } from '../../lib/core/errors.js';

/** Where the library's tables live. */
export interface TableOptions {
  /** A Postgres schema (created if missing): letters, digits and `_`, not first a digit. Default: the search path. */
  readonly schema?: string | undefined;
  /** A prefix for every table name: letters, digits and `_`, not first a digit. Default `ucc_`. */
  readonly prefix?: string | undefined;
}

/**
 * The names allowed for a schema and a prefix. They are quoted wherever they go, but knex still reads a `?` in a
 * quoted name as a placeholder and a `.` as the schema's end, so only plain identifiers are let through.
 */
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** Postgres cuts longer names (NAMEDATALEN - 1 bytes; the allowed characters are one byte each). */
const MAX_NAME = 63;
/** The longest name made from the prefix (migration 003's index): update it when a migration names a longer one. */
const LONGEST_NAME = 'outbox_unsent_by_aggregate';

/** Throws a misuse error naming what is allowed when `schema` or `prefix` is not; the caller has created nothing. */
function checkNames(schema: string | undefined, prefix: string): void {
  const allowed = 'letters, digits and underscores, not starting with a digit';
  if (schema && (!IDENTIFIER.test(schema) || schema.length > MAX_NAME)) {
    throw new UseCaseError(
      'misuse',
      `Schema ${JSON.stringify(schema)} is not allowed — name it with ${allowed}, at most ${MAX_NAME} characters ` +
        '(e.g. app)',
    );
  }
  if (prefix !== '' && !IDENTIFIER.test(prefix)) {
    throw new UseCaseError(
      'misuse',
      `Table prefix ${JSON.stringify(prefix)} is not allowed — use ${allowed} (e.g. ucc_)`,
    );
  }
  if (prefix.length + LONGEST_NAME.length > MAX_NAME) {
    throw new UseCaseError(
      'misuse',
      `Table prefix ${JSON.stringify(prefix)} is too long — the names made from it (${prefix}${LONGEST_NAME}) must ` +
        `fit in Postgres' ${MAX_NAME} bytes: use at most ${MAX_NAME - LONGEST_NAME.length} characters`,
    );
  }
}

/** Qualified names of the library's tables. */
export interface Tables {
  readonly idempotency: string;
  readonly audit: string;
  readonly auditHeads: string;
  readonly outbox: string;
  readonly inbox: string;
  readonly jobs: string;
  readonly processes: string;
  readonly processSteps: string;
  readonly processWaits: string;
  readonly migrations: string;
}

/**
 * The qualified table names for these options. Throws a `misuse` UseCaseError for a schema or prefix that is not a
 * plain identifier (see `TableOptions`), before `migrate` or a store sends anything.
 */
export function tables(options: TableOptions = {}): Tables {
  const prefix = options.prefix ?? 'ucc_';
  checkNames(options.schema, prefix);
  const name = (table: string) => (options.schema ? `${options.schema}.${prefix}${table}` : `${prefix}${table}`);
  return {
    idempotency: name('idempotency'),
    audit: name('audit'),
    auditHeads: name('audit_heads'),
    outbox: name('outbox'),
    inbox: name('inbox'),
    jobs: name('jobs'),
    processes: name('processes'),
    processSteps: name('process_steps'),
    processWaits: name('process_waits'),
    migrations: `${prefix}migrations`,
  };
}
