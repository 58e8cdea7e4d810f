// Parses untrusted input with the request's schema; a failure resolves to `validation` and writes nothing.
import { boundedCopy, DEFAULT_LIMITS, type InputLimits } from '../lib/json.js';
import { withRules, type Middleware } from '../lib/middleware.js';
import { rawInput } from '../lib/request.js';
import { failure, type Issue } from '../lib/result.js';
import type { StandardIssue } from '../lib/schema.js';

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
      if (parsed.issues) return invalid(parsed.issues.map(toIssue));
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

function toIssue(issue: StandardIssue): Issue {
  const path = (issue.path ?? []).map((p) => String(typeof p === 'object' ? p.key : p)).join('.');
  return { path, message: issue.message };
}
