// The Logger port: where the library says what went wrong outside a send's result (relay backoff, parking, dead
// letters, reconnects, failing hooks). The default writes warnings and errors as one JSON line each to stderr.
import type { Container } from 'inversify';
import { TOKENS } from './tokens.js';

/** Structured fields of a log line (ids, counts, the error). */
export type LogFields = Readonly<Record<string, unknown>>;

/**
 * Where the library logs. Bind your own under `TOKENS.Logger` (for pino: `fromPino(pino())`).
 * @example container.bind(TOKENS.Logger).toConstantValue(fromPino(pino({ level: 'info' })));
 */
export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
}

const LEVELS = { debug: 20, info: 30, warn: 40, error: 50 } as const;
export type LogLevel = keyof typeof LEVELS;

/**
 * A Logger writing one JSON line per entry (`{"level":"warn","time":…,"msg":…,…fields}`, pino's shape) to `write`,
 * from `level` up. Errors in fields become `{ type, message, code, stack }`.
 * @example const logger = jsonLogger({ level: 'info' });
 */
export function jsonLogger(
  options: { readonly level?: LogLevel; readonly write?: (line: string) => void } = {},
): Logger {
  const threshold = LEVELS[options.level ?? 'warn'];
  const write = options.write ?? ((line: string) => process.stderr.write(line));
  const at = (level: LogLevel) =>
    LEVELS[level] < threshold
      ? () => undefined
      : (message: string, fields: LogFields = {}) => {
          const entry = { level, time: new Date().toISOString(), msg: message, name: 'usecasecore', ...fields };
          write(`${JSON.stringify(entry, errorsAsObjects)}\n`);
        };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

function errorsAsObjects(_key: string, value: unknown): unknown {
  if (!(value instanceof Error)) return value;
  const { code } = value as { code?: unknown };
  return { type: value.name, message: value.message, ...(code !== undefined ? { code } : {}), stack: value.stack };
}

/** The slice of a pino logger `fromPino` uses: pino takes the fields first, then the message. */
export interface PinoLike {
  debug(fields: object, message: string): void;
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

/**
 * A Logger over pino (or any logger taking `(fields, message)`).
 * @example container.bind(TOKENS.Logger).toConstantValue(fromPino(pino()));
 */
export function fromPino(pino: PinoLike): Logger {
  return {
    debug: (message, fields = {}) => pino.debug(fields, message),
    info: (message, fields = {}) => pino.info(fields, message),
    warn: (message, fields = {}) => pino.warn(fields, message),
    error: (message, fields = {}) => pino.error(fields, message),
  };
}

/** The default: warnings and errors as JSON lines on stderr. */
export const defaultLogger: Logger = jsonLogger();

/** The Logger bound in `source` when it is a container, else the default. */
export function loggerOf(source: Container | object | undefined): Logger {
  const container =
    typeof (source as { get?: unknown } | undefined)?.get === 'function' ? (source as Container) : undefined;
  return container?.get<Logger>(TOKENS.Logger, { optional: true }) ?? defaultLogger;
}
