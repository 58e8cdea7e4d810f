// Consumer-side dedupe: a delivered message takes effect once, recorded in the handler's transaction.
import { withRules, type Middleware } from '../lib/core/middleware.js';
import { MIDDLEWARE } from '../lib/core/names.js';

/**
 * For sends made by a consumer (`meta.message` set), records the message id for the consumer in the transaction;
 * a message already recorded is a duplicate delivery and resolves to `{ ok: true, replayed: true }` without running.
 * Because the record commits with the handler's writes, a crash before commit lets the redelivery run again.
 * @example middleware: [validation(), unitOfWork(), audit(), idempotency(), inbox(), policy(rules), publish()]
 */
export function inbox(): Middleware {
  return withRules(
    async function inbox(ctx, next) {
      const message = ctx.meta.message;
      if (message === undefined) return next();
      if (!(await ctx.ports.inbox!.record(message.consumer, message.id)))
        return { ok: true, value: undefined, replayed: true };
      return next();
    },
    {
      inside: [MIDDLEWARE.unitOfWork],
      before: [MIDDLEWARE.policy, MIDDLEWARE.transition, MIDDLEWARE.publish],
      ports: ['inbox'],
      stream: false,
    },
  );
}
