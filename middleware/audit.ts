// One audit record per send that passed validation, written with the send's commit (or after its rollback).
import { randomUUID } from 'node:crypto';
import type { Context } from '../lib/core/context.js';
import { redact, redactText, sensitiveValues } from '../lib/core/json.js';
import { withRules, type Middleware } from '../lib/core/middleware.js';
import { MIDDLEWARE } from '../lib/core/names.js';
import type { AuditEntry, AuditStore } from '../lib/core/ports.js';
import { payloadOf } from '../lib/core/request.js';
import type { AnyResult } from '../lib/core/result.js';
import { isoTime } from '../lib/core/time.js';

/** Options of `audit()`. */
export interface AuditOptions {
  /** A store other than the bound `TOKENS.AuditStore`. */
  readonly store?: AuditStore;
}

/**
 * Audits every outcome — success, denial, rejected transition, domain failure, replay, mismatch, exception — with a
 * redacted payload. The record joins the transaction: it commits with a success, and a failure's record is written
 * after the rollback, so there is exactly one per send.
 * @example middleware: [validation(), unitOfWork(), audit(), idempotency(), ...]
 */
export function audit(options: AuditOptions = {}): Middleware {
  return withRules(
    async function audit(ctx, next) {
      const store = options.store ?? ctx.ports.audit!;
      let result: AnyResult;
      try {
        result = await next();
      } catch (error) {
        await store.append(entry(ctx, undefined, thrownOutcome(ctx, error)));
        throw error;
      }
      await store.append(entry(ctx, result));
      // A commit that fails after this frame (a beforeCommit hook, the COMMIT itself) takes the record with it: the
      // unit of work then says what happened (unavailable, or an error).
      if (result.ok) ctx.afterRollback((after) => store.append(entry(ctx, after)));
      return result;
    },
    {
      inside: [MIDDLEWARE.unitOfWork],
      before: [MIDDLEWARE.idempotency],
      after: [MIDDLEWARE.validation],
      ports: ['audit'],
    },
  );
}

type ThrownOutcome = 'error' | 'unavailable' | 'validation';

/** The outcome the unit of work will resolve an exception to (see `unitOfWork`), or `error` when it rethrows it. */
function thrownOutcome(ctx: Context, error: unknown): ThrownOutcome {
  const uow = ctx.ports.unitOfWork;
  if (uow?.isUnavailable(error)) return 'unavailable';
  return uow?.refusedValue?.(error) ? 'validation' : 'error';
}

function entry(ctx: Context, result: AnyResult | undefined, thrown: ThrownOutcome = 'error'): AuditEntry {
  const payload = payloadOf(ctx.request);
  return {
    id: randomUUID(),
    at: isoTime(ctx.ports.clock.now()),
    tenant: ctx.meta.tenant,
    actor: ctx.meta.actor?.id ?? null,
    type: ctx.type,
    requestId: ctx.meta.requestId,
    outcome: result === undefined ? thrown : result.ok ? 'ok' : result.failure.kind,
    code: result && !result.ok && result.failure.kind === 'domain' ? result.failure.code : undefined,
    replayed: result?.replayed,
    reason: result && !result.ok ? reasonOf(ctx, result.failure.message, payload) : undefined,
    payload: redact(payload, ctx.requestClass.sensitive),
  };
}

/**
 * A failure's message for the record. It is free text (a policy's reason, a handler's own message) that may quote
 * the request, and an idempotency mismatch names its key, which records never hold (RELIABILITY 13): those values
 * are crossed out as the payload's are. An exception's message is never kept: drivers put SQL and bound values in it.
 */
function reasonOf(ctx: Context, message: string, payload: unknown): string {
  const secrets = sensitiveValues(payload, ctx.requestClass.sensitive);
  if (ctx.meta.idempotencyKey !== undefined) secrets.push(ctx.meta.idempotencyKey);
  return redactText(message, secrets);
}
