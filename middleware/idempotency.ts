// Stripe-style idempotency keys: replay the stored result, refuse another payload, never run twice.
import { canonicalJson, sha256 } from '../lib/core/json.js';
import { withRules, type Middleware } from '../lib/core/middleware.js';
import type { IdempotencyKey, IdempotencyStore } from '../lib/core/ports.js';
import { payloadOf } from '../lib/core/request.js';
import { FAILURES } from '../lib/core/failures.js';
import { MIDDLEWARE } from '../lib/core/names.js';
import { failure } from '../lib/core/result.js';

/** Options of `idempotency()`. */
export interface IdempotencyOptions {
  /** How long a stored result replays. Default 24 h. */
  readonly ttlMs?: number;
  /** How long a duplicate waits for the send that holds its key before it gets `in_progress`. Default 2 s. */
  readonly waitMs?: number;
  /** A store other than the bound `TOKENS.IdempotencyStore`. */
  readonly store?: IdempotencyStore;
}

/**
 * Runs a command once per idempotency key (scoped by tenant and actor). The key is claimed in the business
 * transaction and its result stored with the commit, so the effect and its result exist together or not at all; a
 * duplicate waits for the first send, then replays its result (`replayed: true`) or runs if the first rolled back;
 * another payload under the same key gets `idempotency_mismatch`.
 * @example await mediator.send(cmd, { actor, idempotencyKey: req.get('Idempotency-Key') })
 */
export function idempotency(options: IdempotencyOptions = {}): Middleware {
  const { ttlMs = 86_400_000, waitMs = 2_000 } = options;
  return withRules(
    async function idempotency(ctx, next) {
      const key = ctx.meta.idempotencyKey;
      if (key === undefined) return next();
      const store = options.store ?? ctx.ports.idempotency!;
      const id: IdempotencyKey = { scope: `${ctx.meta.tenant}\u001f${ctx.meta.actor?.id ?? ''}`, key };
      const fingerprint = sha256(`${ctx.type}\n${canonicalJson(payloadOf(ctx.request))}`);
      const claim = await store.claim(id, fingerprint, waitMs);
      if (claim.status === 'in_progress') {
        return failure({
          kind: 'in_progress',
          message: 'A request with this idempotency key is still running — retry later',
        });
      }
      if (claim.status === 'completed') {
        if (claim.fingerprint === fingerprint) return { ...claim.response, replayed: true };
        return failure({
          kind: 'idempotency_mismatch',
          message: `Idempotency key "${key}" was used with another request — use a new key for a new request`,
        });
      }
      const result = await next();
      // What the failure table says is not stored (a retry could succeed) lets the next send with the key run again.
      if (result.ok || FAILURES[result.failure.kind].stored) await store.complete(id, fingerprint, result, ttlMs);
      return result;
    },
    {
      inside: [MIDDLEWARE.unitOfWork],
      after: [MIDDLEWARE.validation, MIDDLEWARE.audit],
      ports: ['idempotency'],
      stream: false, // a stream's items are pulled later: nothing to store and replay
    },
  );
}
