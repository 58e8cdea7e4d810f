// What every CLI command shares: common options, durations, the database, output and exit codes.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import knex, { type Knex } from 'knex';
import { UseCaseError } from '../../lib/core/errors.js';
import { tables, type TableOptions, type Tables } from '../knex/tables.js';

/** Exit codes: success, a problem was found (or the work failed), bad usage. */
export const EXIT = { ok: 0, problem: 1, usage: 2 } as const;

/** Bad usage: the message says what to type instead (exit 2, with the command's usage line). */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

type Options = NonNullable<ParseArgsConfig['options']>;

const COMMON_OPTIONS = {
  'database-url': { type: 'string' },
  schema: { type: 'string' },
  prefix: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies Options;

/** The help lines of the options every command takes. */
export const COMMON_HELP = `Common options:
  --database-url <url>  Postgres holding the tables (default: $DATABASE_URL)
  --schema <name>       schema of the library's tables (default: $UCC_SCHEMA, else the search path)
  --prefix <prefix>     prefix of the table names (default: $UCC_PREFIX, else ucc_)
  --json                print one JSON document on stdout instead of text
  -h, --help            show this help`;

/** One command: `usecasecore <name> <usage>`. */
export interface Command {
  /** e.g. `outbox status` */
  readonly name: string;
  /** One line for `usecasecore --help`. */
  readonly summary: string;
  /** What follows the name in the usage line, e.g. `<id…> | --parked`. */
  readonly usage: string;
  /** What it does, its own options and its exit codes (the common options are appended). */
  readonly help: string;
  readonly options?: Options;
  /** Takes positional arguments (e.g. ids). Default false. */
  readonly positionals?: boolean;
  run(cli: Invocation): Promise<number>;
}

/** A parsed command line, and what a command needs to do its work. */
export interface Invocation {
  readonly positionals: readonly string[];
  readonly json: boolean;
  readonly tableOptions: TableOptions;
  readonly tables: Tables;
  readonly env: NodeJS.ProcessEnv;
  string(name: string): string | undefined;
  flag(name: string): boolean;
  /** A duration option (`7d`, `12h`, `30m`, `45s`, `500ms`) in ms, or undefined when absent. */
  duration(name: string): number | undefined;
  /** The database (`--database-url`, else DATABASE_URL); opened once, closed when the command ends. */
  db(pool?: { min?: number; max?: number }): Knex;
  /** Prints `human`, or `json` as one JSON document under `--json`. */
  print(human: string, json: unknown): void;
  /** A line on stdout (under `--json` too: for long-running commands). */
  out(line: string): void;
  /** A line on stderr. */
  err(line: string): void;
}

const UNITS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * Milliseconds in a duration: a whole number and one of ms, s, m, h, d. Throws a UsageError for anything else.
 * @example parseDuration('7d', '--sent-before') // 604_800_000
 */
export function parseDuration(text: string, option: string): number {
  const match = /^(\d+)(ms|s|m|h|d)$/.exec(text.trim());
  if (!match) {
    throw new UsageError(
      `${option} "${text}" is not a duration — use a whole number and a unit: 500ms, 45s, 30m, 12h or 7d`,
    );
  }
  return Number(match[1]) * UNITS[match[2]!]!;
}

/**
 * A comma-separated option whose values must be among `allowed` (e.g. `--state failed,dead`), or undefined when
 * absent. Throws a UsageError naming the unknown values and the allowed ones.
 * @example listOf(cli.string('state'), '--state', ['queued', 'running']) // ['queued']
 */
export function listOf<T extends string>(
  text: string | undefined,
  option: string,
  allowed: readonly T[],
): T[] | undefined {
  if (text === undefined) return undefined;
  const values = text.split(',').map((s) => s.trim());
  const unknown = values.filter((s) => !allowed.includes(s as T));
  if (unknown.length > 0)
    throw new UsageError(`${option} ${unknown.join(',')}: use one or more of ${allowed.join(',')}`);
  return values as T[];
}

/**
 * A duration for people: its two largest units (`3d 4h`, `12m 5s`, `500ms`).
 * @example formatDuration(93_784_000) // '1d 2h'
 */
export function formatDuration(ms: number): string {
  if (ms < 1_000) return `${Math.round(ms)}ms`;
  const seconds = Math.floor(ms / 1_000);
  const units = [
    ['d', 86_400],
    ['h', 3_600],
    ['m', 60],
    ['s', 1],
  ] as const;
  const i = units.findIndex(([, size]) => seconds >= size);
  const [unit, size] = units[i]!,
    next = units[i + 1];
  const rest = next ? Math.floor((seconds % size) / next[1]) : 0;
  return `${Math.floor(seconds / size)}${unit}${rest > 0 ? ` ${rest}${next![0]}` : ''}`;
}

/**
 * Aligned columns: numbers to the right, text to the left, two spaces between.
 * @example table([['type', 'unsent'], ['order.placed', '3']])
 */
export function table(rows: ReadonlyArray<readonly string[]>): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((row) => row[c]?.length ?? 0)));
  const numeric = (text: string) => /^[\d,.]+$/.test(text);
  return rows
    .map((row) =>
      row
        .map((cell, c) => (numeric(cell) ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** The full help of a command. */
function helpOf(command: Command): string {
  return `Usage: usecasecore ${command.name} ${command.usage}\n\n${command.help}\n\n${COMMON_HELP}\n`;
}

/**
 * Parses `argv` for `command` and runs it; returns the exit code. Bad usage prints the usage line on stderr (2);
 * a failure prints what went wrong and how to fix it (1).
 * @example process.exitCode = await runCommand(migrateCommand, ['--dry-run']);
 */
export async function runCommand(command: Command, argv: readonly string[], env = process.env): Promise<number> {
  const out = (line: string) => void process.stdout.write(`${line}\n`);
  const err = (line: string) => void process.stderr.write(`${line}\n`);
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(helpOf(command));
    return EXIT.ok;
  }
  let db: Knex | undefined;
  try {
    const cli = invocation(command, argv, env, out, err, (pool) => (db ??= connect(cli, pool)));
    return await command.run(cli);
  } catch (error) {
    if (error instanceof UsageError) {
      err(`usecasecore ${command.name}: ${error.message}`);
      err(`Usage: usecasecore ${command.name} ${command.usage}   (see: usecasecore ${command.name} --help)`);
      return EXIT.usage;
    }
    err(`usecasecore ${command.name}: ${explain(error)}`);
    return EXIT.problem;
  } finally {
    await (db as Knex | undefined)?.destroy();
  }
}

function invocation(
  command: Command,
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
  out: (line: string) => void,
  err: (line: string) => void,
  open: (pool?: { min?: number; max?: number }) => Knex,
): Invocation {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      options: { ...COMMON_OPTIONS, ...command.options },
      strict: true,
      allowPositionals: command.positionals ?? false,
    });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const values = parsed.values as Record<string, string | boolean | undefined>;
  const string = (name: string) => (typeof values[name] === 'string' ? values[name] : undefined);
  const tableOptions = {
    schema: string('schema') ?? (env.UCC_SCHEMA || undefined),
    prefix: string('prefix') ?? (env.UCC_PREFIX || undefined),
  };
  const json = values.json === true;
  return {
    positionals: parsed.positionals,
    json,
    tableOptions,
    tables: tablesOf(tableOptions),
    env,
    out,
    err,
    string,
    flag: (name) => values[name] === true,
    duration: (name) => {
      const text = string(name);
      return text === undefined ? undefined : parseDuration(text, `--${name}`);
    },
    db: open,
    print: (human, document) => out(json ? JSON.stringify(document, null, 2) : human),
  };
}

/** The table names, or a UsageError when --schema or --prefix (or UCC_SCHEMA, UCC_PREFIX) is not allowed. */
function tablesOf(options: TableOptions): Tables {
  try {
    return tables(options);
  } catch (error) {
    if (UseCaseError.is(error) && error.kind === 'misuse') throw new UsageError(error.message);
    throw error;
  }
}

function connect(cli: Invocation, pool: { min?: number; max?: number } = {}): Knex {
  const url = cli.string('database-url') ?? cli.env.DATABASE_URL;
  if (!url) {
    throw new UsageError('Set DATABASE_URL or pass --database-url (e.g. postgres://postgres@127.0.0.1:5432/app)');
  }
  return knex({
    client: 'pg',
    connection: url,
    pool: { min: pool.min ?? 0, max: pool.max ?? 2 },
    acquireConnectionTimeout: 10_000,
  });
}

/** A failure in words, with the fix when it is a known one. */
function explain(error: unknown): string {
  const e = error as { code?: string; message?: string } | undefined;
  let message = e?.message ?? String(error);
  // knex puts the statement before Postgres' message: keep the message.
  if (/^[0-9A-Z]{5}$/.test(e?.code ?? '') && message.includes(' - ')) {
    message = message.slice(message.lastIndexOf(' - ') + 3);
  }
  if (e?.code === '42P01') {
    return (
      `${message} — the library's tables are missing: run \`usecasecore migrate\` with the same --schema` +
      ' and --prefix'
    );
  }
  if (['3D000', '28P01', '28000'].includes(e?.code ?? '')) return `${message} — check --database-url or DATABASE_URL`;
  if (/ECONNREFUSED|ENOTFOUND|EAI_AGAIN|Timeout acquiring a connection/.test(message)) {
    return `cannot reach the database (${message}) — check --database-url or DATABASE_URL, and that Postgres is up`;
  }
  return message;
}

/**
 * A URL without its credentials, for logs.
 * @example redact('amqp://guest:guest@127.0.0.1:5672') // 'amqp://127.0.0.1:5672'
 */
export function redact(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//');
}
