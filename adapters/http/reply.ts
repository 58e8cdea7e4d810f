// Send options from request headers, and the HTTP reply (or Fetch Response) of a send's result.
import type { Actor, Issue, Result, SendOptions } from '../../lib/core/index.js';
import { idempotencyKeyIssue, invalidMessage } from '../../middleware/validation.js';
import { problem, toProblem, type HttpReply, type Problem, type ProblemOptions } from './problem.js';

/**
 * Request headers as any framework has them: a getter (`(name) => req.get(name)`), an object with `get` (Fetch
 * `Headers`, Express `req`), or Node's `IncomingHttpHeaders` record (lower-case names).
 */
export type HeadersLike =
  | ((name: string) => string | null | undefined)
  | { get(name: string): string | null | undefined }
  | Readonly<Record<string, string | readonly string[] | undefined>>;

/** One header's value (repeated headers joined with `, `, as Node and Fetch do), or undefined when absent. */
export function header(headers: HeadersLike, name: string): string | undefined {
  if (typeof headers === 'function') return headers(name) ?? undefined;
  if (typeof headers.get === 'function')
    return (headers.get as (name: string) => string | null | undefined)(name) ?? undefined;
  const value = (headers as Readonly<Record<string, string | readonly string[] | undefined>>)[name.toLowerCase()];
  return Array.isArray(value) ? value.join(', ') : (value as string | undefined);
}

/** How the app reads who is acting (and for which tenant) from a request's headers. */
export interface SendOptionsReader {
  /** The actor, from whatever authentication the app uses; undefined for an anonymous request. */
  readonly actor?: (get: (name: string) => string | undefined) => Actor | undefined;
  /** The tenant, when the app is multi-tenant. */
  readonly tenant?: (get: (name: string) => string | undefined) => string | undefined;
}

/**
 * The mediator's send options from request headers: `Idempotency-Key` (checked: 1–255 printable characters, one
 * header) and the actor and tenant through the app's functions. A bad key is answered with a 422 validation problem,
 * exactly as the mediator would answer it, before anything runs.
 * @example
 * const actor = (get: (name: string) => string | undefined) => (get('X-Actor') ? { id: get('X-Actor')! } : undefined);
 * const read = readSendOptions(req.headers, { actor });
 * if (!read.ok) return res.status(read.reply.status).set(read.reply.headers).send(JSON.stringify(read.reply.body));
 * const result = await mediator.send(PlaceOrder.from(req.body), read.options);
 */
export function readSendOptions(
  headers: HeadersLike,
  reader: SendOptionsReader = {},
): { readonly ok: true; readonly options: SendOptions } | { readonly ok: false; readonly reply: HttpReply<Problem> } {
  const get = (name: string) => header(headers, name);
  const idempotencyKey = get('Idempotency-Key');
  const issue = idempotencyKey === undefined ? undefined : idempotencyKeyIssue(idempotencyKey);
  if (issue) return { ok: false, reply: validationProblem([issue]) };
  return { ok: true, options: { idempotencyKey, actor: reader.actor?.(get), tenant: reader.tenant?.(get) } };
}

/** The 422 of input refused before it reached the mediator, worded as the validation middleware words its own. */
export function validationProblem(issues: readonly Issue[]): HttpReply<Problem> {
  return problem('validation', invalidMessage(issues), { issues });
}

/** Options of `toReply`. */
export interface ReplyOptions extends ProblemOptions {
  /** The status of a success (201 for a create, 202 for accepted work). Default 200. */
  readonly successStatus?: number;
}

/**
 * The HTTP reply of a send: its value as JSON with the success status, or its failure as problem+json. A replay of
 * an idempotent request carries `Idempotent-Replayed: true` (with the stored status and body).
 * @example const reply = toReply(await mediator.send(PlaceOrder.from(body), options), { successStatus: 201 });
 */
export function toReply(result: Result<unknown, string>, options: ReplyOptions = {}): HttpReply {
  const reply: HttpReply = result.ok
    ? { status: options.successStatus ?? 200, headers: { 'Content-Type': 'application/json' }, body: result.value }
    : toProblem(result.failure, options);
  return result.replayed ? { ...reply, headers: { ...reply.headers, 'Idempotent-Replayed': 'true' } } : reply;
}

/**
 * A Fetch API `Response` of a reply (for Hono, Bun, Deno, or Node's own `Response`).
 * @example return toResponse(toReply(await mediator.send(GetOrder.from({ orderId }))));
 */
export function toResponse(reply: HttpReply): Response {
  return new Response(reply.body === undefined ? null : JSON.stringify(reply.body), {
    status: reply.status,
    headers: reply.headers,
  });
}
