// Stripe-style idempotency keys: replay the stored result, refuse another payload, never run twice.
import { UseCaseError } from '../lib/errors.js';
import { canonicalJson, sha256 } from '../lib/json.js';
import { withRules, type Middleware } from '../lib/middleware.js';
import type { Claim, IdempotencyKey, IdempotencyStore } from '../lib/ports.js';
import { payloadOf } from '../lib/request.js';
import { failure, type FailureKind } from '../lib/result.js';

/** Options of `idempotency()`. */
export interface IdempotencyOptions {
  /** How long a claim holds before another send may take it over (crashed owner). Default 30 s. */
  readonly leaseMs?: number;
  /** How long a stored result replays. Default 24 h. */
  readonly ttlMs?: number;
  /** How long a duplicate waits for an in-flight first send before it gets `in_progress`. Default 2 s. */
  readonly waitMs?: number;
  /** A store other than the bound `TOKENS.IdempotencyStore`. */
  readonly store?: IdempotencyStore;
}

// Failures a retry could turn into success are not stored: the next send with the key runs again.
const TRANSIENT: ReadonlySet<FailureKind> = new Set([
  'validation',
  'in_progress',
  'idempotency_mismatch',
  'conflict',
  'unavailable',
]);

/**
 * Runs a command once per idempotency key (scoped by tenant and actor). The result is stored in the business
 * transaction; a duplicate replays it (`replayed: true`), waits for it, or gets `in_progress`; another payload
 * under the same key gets `idempotency_mismatch`.
 * @example await mediator.send(cmd, { actor, idempotencyKey: req.get('Idempotency-Key') })
 */
export function idempotency(options: IdempotencyOptions = {}): Middleware {
  const { leaseMs = 30_000, ttlMs = 86_400_000, waitMs = 2_000 } = options;
  return withRules(
    async function idempotency(ctx, next) {
      const key = ctx.meta.idempotencyKey;
      if (key === undefined) return next();
      const store = options.store ?? ctx.ports.idempotency!;
      const id: IdempotencyKey = { scope: `${ctx.meta.tenant}\u001f${ctx.meta.actor?.id ?? ''}`, key };
      const fingerprint = sha256(`${ctx.type}\n${canonicalJson(payloadOf(ctx.request))}`);
      const claim = await claimOrWait(store, id, fingerprint, leaseMs, waitMs);
      if (claim.status !== 'claimed') {
        if (claim.fingerprint !== fingerprint) {
          return failure({
            kind: 'idempotency_mismatch',
            message: `Idempotency key "${key}" was used with another request — use a new key for a new request`,
          });
        }
        if (claim.status === 'in_progress')
          return failure({
            kind: 'in_progress',
            message: 'A request with this idempotency key is still running — retry later',
          });
        return { ...claim.response, replayed: true };
      }
      let committed: unknown;
      ctx.beforeCommit(async (result) => {
        await store.complete(id, claim.token, result!, ttlMs);
        committed = result;
      });
      try {
        const result = await next();
        if (result === committed) return result;
        if (!result.ok && !TRANSIENT.has(result.failure.kind)) await store.complete(id, claim.token, result, ttlMs);
        else await store.release(id, claim.token);
        return result;
      } catch (error) {
        await store.release(id, claim.token);
        if (UseCaseError.is(error) && error.kind === 'claim_lost') {
          return failure({
            kind: 'conflict',
            message: `Idempotency key "${key}" expired while running and was taken over — nothing was committed`,
          });
        }
        throw error;
      }
    },
    { requires: ['unitOfWork'], before: ['unitOfWork'], after: ['validation', 'audit'], ports: ['idempotency'] },
  );
}

async function claimOrWait(
  store: IdempotencyStore,
  id: IdempotencyKey,
  fingerprint: string,
  leaseMs: number,
  waitMs: number,
): Promise<Claim> {
  const deadline = Date.now() + waitMs;
  for (let pause = 5; ; pause = Math.min(pause * 2, 100)) {
    const claim = await store.claim(id, fingerprint, leaseMs);
    if (claim.status !== 'in_progress' || claim.fingerprint !== fingerprint || Date.now() + pause > deadline)
      return claim;
    await new Promise((resolve) => setTimeout(resolve, pause));
  }
}
