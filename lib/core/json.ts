// Plain-data helpers shared by middleware and adapters: bounded copying, canonical JSON, hashing, redaction.
import crypto from 'node:crypto';

/** Bounds applied to untrusted input before anything recurses over it. */
export interface InputLimits {
  /** Deepest nesting of objects/arrays. Default 32. */
  readonly maxDepth: number;
  /** Most values (objects, arrays, leaves) in total. Default 10,000. */
  readonly maxNodes: number;
  /** Most string characters in total (keys and values). Default 1,000,000. */
  readonly maxChars: number;
}

export const DEFAULT_LIMITS: InputLimits = { maxDepth: 32, maxNodes: 10_000, maxChars: 1_000_000 };
const UNSAFE_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

function isPlainObject(value: object): boolean {
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/**
 * Copies untrusted data without recursion, dropping `__proto__`/`constructor`/`prototype` keys at every depth,
 * or says which limit it broke. Class instances (Date, Buffer…) are kept as leaves.
 */
export function boundedCopy(
  input: unknown,
  limits: InputLimits = DEFAULT_LIMITS,
): { ok: true; value: unknown } | { ok: false; message: string; path?: string } {
  let nodes = 0;
  let chars = 0;
  const root: { value: unknown } = { value: undefined };
  const stack: Array<
    [source: unknown, target: Record<string, unknown> | unknown[], key: string | number, depth: number]
  > = [[input, root as unknown as Record<string, unknown>, 'value', 0]];
  while (stack.length > 0) {
    const [source, target, key, depth] = stack.pop()!;
    if (++nodes > limits.maxNodes) return { ok: false, message: `Input has more than ${limits.maxNodes} values` };
    if (typeof source === 'string') {
      if ((chars += source.length) > limits.maxChars)
        return { ok: false, message: `Input has more than ${limits.maxChars} characters` };
      if (!storable(source))
        return { ok: false, message: 'Input has a NUL character or a lone surrogate, which no JSON store keeps' };
    }
    if (typeof source !== 'object' || source === null || !(Array.isArray(source) || isPlainObject(source))) {
      const refused = unjsonable(source);
      if (refused)
        return { ok: false, message: `${refused}, which JSON cannot hold`, path: pathTo(input, source) ?? '' };
      (target as Record<string | number, unknown>)[key] = source;
      continue;
    }
    if (depth >= limits.maxDepth)
      return { ok: false, message: `Input is nested deeper than ${limits.maxDepth} levels` };
    if (Array.isArray(source)) {
      if (nodes + source.length > limits.maxNodes)
        return { ok: false, message: `Input has more than ${limits.maxNodes} values` };
      const copy = new Array<unknown>(source.length);
      (target as Record<string | number, unknown>)[key] = copy;
      for (let i = source.length - 1; i >= 0; i--) stack.push([source[i], copy, i, depth + 1]);
    } else {
      const copy: Record<string, unknown> = {};
      (target as Record<string | number, unknown>)[key] = copy;
      for (const k of Object.keys(source)) {
        if (UNSAFE_KEYS.has(k)) continue;
        if (!storable(k)) return { ok: false, message: 'Input has a key with a NUL character or a lone surrogate' };
        if ((chars += k.length) > limits.maxChars)
          return { ok: false, message: `Input has more than ${limits.maxChars} characters` };
        stack.push([(source as Record<string, unknown>)[k], copy, k, depth + 1]);
      }
    }
  }
  return { ok: true, value: root.value };
}

/**
 * Why a leaf cannot round-trip through JSON (`1e309` parses to Infinity, which JSON.stringify writes as null: the
 * stored fingerprint, audit record and outbox row would not hold what the handler saw), or undefined.
 */
function unjsonable(leaf: unknown): string | undefined {
  if (typeof leaf === 'number') return Number.isFinite(leaf) ? undefined : `Input has a non-finite number (${leaf})`;
  if (typeof leaf === 'bigint' || typeof leaf === 'function' || typeof leaf === 'symbol')
    return `Input has a ${typeof leaf}`;
  return undefined;
}

/** The dotted path of the first place `leaf` stands in `value` ('' for the root); only run to report a refusal. */
function pathTo(value: unknown, leaf: unknown, path = ''): string | undefined {
  if (value === leaf || (Number.isNaN(value) && Number.isNaN(leaf))) return path;
  if (typeof value !== 'object' || value === null) return undefined;
  for (const [k, v] of Object.entries(value)) {
    const found = pathTo(v, leaf, path === '' ? k : `${path}.${k}`);
    if (found !== undefined) return found;
  }
  return undefined;
}

// Postgres jsonb (and text) refuse U+0000 and unpaired surrogates; refusing them up front keeps them from failing a
// send after its effects were applied (its audit record and outbox rows could then not be written).
function storable(text: string): boolean {
  return !text.includes('\0') && (text as string & { isWellFormed(): boolean }).isWellFormed();
}

/**
 * JSON with object keys sorted, so reordered keys give the same text (and the same fingerprint).
 * @example canonicalJson({ b: 1, a: [2] }) === '{"a":[2],"b":1}'
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (typeof (value as { toJSON?: unknown }).toJSON === 'function')
    return canonicalJson((value as { toJSON(): unknown }).toJSON());
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++)
      out += (i === 0 ? '' : ',') + (value[i] === undefined ? 'null' : canonicalJson(value[i]));
    return out + ']';
  }
  const keys = Object.keys(value).sort();
  let out = '{';
  for (const k of keys) {
    const v = (value as Record<string, unknown>)[k];
    if (v === undefined) continue;
    out += (out.length === 1 ? '' : ',') + JSON.stringify(k) + ':' + canonicalJson(v);
  }
  return out + '}';
}

/** Hex SHA-256 of a string. */
export function sha256(text: string): string {
  return oneShotHash ? oneShotHash('sha256', text, 'hex') : crypto.createHash('sha256').update(text).digest('hex');
}

// crypto.hash (Node >= 20.12 / 21.7) skips the Hash object; feature-detected, since engines allow Node 20.0.
const oneShotHash = typeof crypto.hash === 'function' ? crypto.hash : undefined;

/**
 * Field names whose values never reach audit records or validation failures (matched case-insensitively, anywhere
 * in the payload).
 */
export const SECRET_FIELD = /pass(word)?|secret|token|authorization|api[-_]?key|card|cvv|cvc|pan$|ssn|iban/i;

/**
 * Whether a field's value is kept out of records and messages: a secret-looking name, or one of the `extra` names (a
 * request class's `sensitive`).
 * @example isSensitiveKey('apiToken') // true
 */
export function isSensitiveKey(key: string, extra: readonly string[] = []): boolean {
  return SECRET_FIELD.test(key) || extra.includes(key);
}

/**
 * Copies `value` with secret-looking fields (and the `extra` names) replaced by `'[REDACTED]'`.
 * @example redact({ user: 'a', password: 'x' }) // { user: 'a', password: '[REDACTED]' }
 */
export function redact(value: unknown, extra: readonly string[] = []): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((v) => redact(v, extra));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    out[k] = isSensitiveKey(k, extra) ? '[REDACTED]' : redact(v, extra);
  }
  return out;
}

/**
 * The values of `payload`'s sensitive fields (those `redact` replaces, at any depth), as text, for `redactText`.
 * Values shorter than 3 characters are left out: crossing them out would garble ordinary words and numbers, and
 * they say next to nothing of a secret.
 */
export function sensitiveValues(payload: unknown, extra: readonly string[] = []): string[] {
  const found: string[] = [];
  const collect = (value: unknown, sensitive: boolean): void => {
    if (typeof value === 'string' || typeof value === 'number') {
      if (sensitive && String(value).length >= 3) found.push(String(value));
    } else if (value !== null && typeof value === 'object') {
      for (const [k, v] of Object.entries(value)) collect(v, sensitive || isSensitiveKey(k, extra));
    }
  };
  collect(payload, false);
  return found;
}

/**
 * `text` with every occurrence of each secret crossed out as `'[REDACTED]'`: for free text written from a request,
 * such as a denial's reason or a handler's failure message.
 * @example redactText('card 4242424242424242 declined', ['4242424242424242']) // 'card [REDACTED] declined'
 */
export function redactText(text: string, secrets: Iterable<string>): string {
  const escaped = [...new Set(secrets)]
    .filter((secret) => secret !== '')
    .sort((a, b) => b.length - a.length) // one pass, longest first: a secret holding another goes whole
    .map((secret) => secret.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  return escaped.length === 0 ? text : text.replace(new RegExp(escaped.join('|'), 'g'), '[REDACTED]');
}
