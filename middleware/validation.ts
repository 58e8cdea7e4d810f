// Parses untrusted input with the request's schema; a failure resolves to `validation` and writes nothing.
import { boundedCopy, DEFAULT_LIMITS, isSensitiveKey, type InputLimits } from '../lib/core/json.js';
import { withRules, type Middleware } from '../lib/core/middleware.js';
import { rawInput } from '../lib/core/request.js';
import { failure, type Issue } from '../lib/core/result.js';
import type { StandardIssue } from '../lib/core/schema.js';

/** Options of `validation()`. */
export interface ValidationOptions {
  /** Bounds checked before the schema (or anything else) recurses over the input. */
  readonly limits?: Partial<InputLimits>;
}

// Idempotency keys: 1–255 printable ASCII characters (IETF draft; no control characters reach a store or a log).
const KEY_FORMAT = /^[\x21-\x7e]{1,255}$/;

/**
 * What is wrong with an idempotency key, or undefined when it is well-formed (1–255 printable characters, no spaces).
 * @example idempotencyKeyIssue('a b') // { path: 'idempotencyKey', message: 'Idempotency key must be …' }
 */
export function idempotencyKeyIssue(key: string): Issue | undefined {
  if (KEY_FORMAT.test(key)) return undefined;
  return { path: 'idempotencyKey', message: 'Idempotency key must be 1–255 printable characters without spaces' };
}

/**
 * Validates every request with its Standard Schema (valibot by default) and replaces `ctx.request` with the parsed
 * copy: unknown keys stripped, `__proto__`/`constructor` dropped, size and depth bounded first.
 * @example createMediator(container, { handlers, middleware: [validation({ limits: { maxDepth: 16 } }), ...] })
 */
export function validation(options: ValidationOptions = {}): Middleware {
  const limits = { ...DEFAULT_LIMITS, ...options.limits };
  return withRules(
    async function validation(ctx, next) {
      const keyIssue = ctx.meta.idempotencyKey === undefined ? undefined : idempotencyKeyIssue(ctx.meta.idempotencyKey);
      if (keyIssue) return invalid([keyIssue]);
      const copy = boundedCopy(rawInput(ctx.request), limits);
      if (!copy.ok) return invalid([{ path: copy.path ?? '', message: copy.message }]);
      const parsed = await ctx.requestClass.schema['~standard'].validate(copy.value);
      const sensitive = ctx.requestClass.sensitive ?? [];
      if (parsed.issues) return invalid(parsed.issues.map((issue) => toIssue(issue, copy.value, sensitive)));
      ctx.request = new ctx.requestClass(parsed.value);
      return next();
    },
    { first: true },
  );
}

function invalid(issues: Issue[]) {
  return failure({ kind: 'validation', message: invalidMessage(issues), issues });
}

/** The message of a validation failure: every issue with its path. */
export function invalidMessage(issues: readonly Issue[]): string {
  return `Invalid request: ${issues.map((i) => `${i.path || '(root)'}: ${i.message}`).join('; ')}`;
}

/**
 * A schema issue with its path joined. Schema libraries put the value they received in their messages (valibot:
 * `Invalid format: Expected /^tok_…/ but received "tok_live…"`), and failures reach responses and logs: at a
 * sensitive path (a secret-looking key or one of the request's `sensitive` fields, as `redact` decides) the message
 * loses that part, or is replaced when the value still shows.
 */
function toIssue(issue: StandardIssue, input: unknown, sensitive: readonly string[]): Issue {
  const keys = (issue.path ?? []).map((p) => String(typeof p === 'object' ? p.key : p));
  const path = keys.join('.');
  if (!keys.some((key) => isSensitiveKey(key, sensitive))) return { path, message: issue.message };
  const message = issue.message.replace(/(?: but received|:? Received) [^]*$/, '');
  const shown = leaves(valueAt(input, keys)).some((text) => text !== '' && message.includes(text));
  return { path, message: shown ? 'Invalid value (not shown: the field is sensitive)' : message };
}

/** The value at `keys` in parsed JSON-like input (undefined when the path leads nowhere). */
function valueAt(input: unknown, keys: readonly string[]): unknown {
  let value = input;
  for (const key of keys) {
    value =
      value !== null && typeof value === 'object' && Object.hasOwn(value, key)
        ? (value as Record<string, unknown>)[key]
        : undefined;
  }
  return value;
}

/** The texts of a value's strings and numbers (its own, or its fields' at any depth: the input is bounded). */
function leaves(value: unknown): string[] {
  if (typeof value === 'string' || typeof value === 'number') return [String(value)];
  return value !== null && typeof value === 'object' ? Object.values(value).flatMap(leaves) : [];
}
