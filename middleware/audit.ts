// One audit record per send that passed validation: in the business transaction on success, on its own otherwise.
import { randomUUID } from 'node:crypto';
import type { AnyResult, Context } from '../lib/context.js';
import { redact } from '../lib/json.js';
import { withRules, type Middleware } from '../lib/middleware.js';
import type { AuditEntry, AuditStore } from '../lib/ports.js';
import { payloadOf } from '../lib/request.js';

/** Options of `audit()`. */
export interface AuditOptions {
  /** A store other than the bound `TOKENS.AuditStore`. */
  readonly store?: AuditStore;
}

/**
 * Audits every outcome — success, denial, rejected transition, domain failure, replay, exception — with a redacted
 * payload, chained per tenant. Sits outside idempotency and the unit of work so it sees every one of them.
 * @example middleware: [validation(), audit(), idempotency(), unitOfWork(), ...]
 */
export function audit(options: AuditOptions = {}): Middleware {
  return withRules(
    async function audit(ctx, next) {
      const store = options.store ?? ctx.ports.audit!;
      let committed: unknown;
      // Last before commit: a chained store locks the tenant's chain head from the append until the commit.
      ctx.beforeCommit(
        async (result) => {
          await store.append(entry(ctx, result));
          committed = result;
        },
        { last: true },
      );
      let result: AnyResult;
      try {
        result = await next();
      } catch (error) {
        await store.append(entry(ctx, undefined));
        throw error;
      }
      if (result !== committed) {
        const record = entry(ctx, result);
        await store.append(record);
        // A nested send's failure was written in the outer transaction; if that rolls back, write it on its own.
        if (ctx.parent && !result.ok) ctx.parent.afterRollback(() => store.append(record));
      }
      return result;
    },
    { requires: ['unitOfWork'], before: ['idempotency', 'unitOfWork'], after: ['validation'], ports: ['audit'] },
  );
}

function entry(ctx: Context, result: AnyResult | undefined): AuditEntry {
  return {
    id: randomUUID(),
    at: new Date(ctx.ports.clock.now()).toISOString(),
    tenant: ctx.meta.tenant,
    actor: ctx.meta.actor?.id ?? null,
    type: ctx.type,
    requestId: ctx.meta.requestId,
    outcome: result === undefined ? 'error' : result.ok ? 'ok' : result.failure.kind,
    code: result && !result.ok && result.failure.kind === 'domain' ? result.failure.code : undefined,
    replayed: result?.replayed,
    payload: redact(payloadOf(ctx.request), ctx.requestClass.sensitive),
  };
}
