// Runs delivered messages through the mediator: jobs staged with ctx.enqueue, or events handled as requests.
import type { AnyResult } from './context.js';
import { UseCaseError } from './errors.js';
import type { Mediator } from './mediator.js';
import type { OutboxMessage } from './ports.js';
import { typeOf, type RequestClass } from './request.js';

/**
 * A message handler that sends each delivered message as its request type through the full pipeline. The message
 * id is the idempotency key, so a redelivered message replays instead of running twice.
 * @example for (const type of [SendReceipt]) bus.subscribe(typeOf(type), messageDispatcher(mediator, [SendReceipt]));
 */
export function messageDispatcher(mediator: Mediator, types: readonly RequestClass[]): (message: OutboxMessage) => Promise<AnyResult> {
  const byName = new Map(types.map((t) => [typeOf(t), t]));
  return (message) => {
    const type = byName.get(message.type);
    if (!type) return Promise.reject(new UseCaseError('no_handler', `No request type "${message.type}" given to messageDispatcher — add its class to the list`));
    const { actor, tenant, requestId } = message.headers;
    return mediator.send(type.from(message.payload), {
      idempotencyKey: message.id, tenant, requestId, actor: actor === undefined ? undefined : { id: actor },
    });
  };
}

/**
 * Calls `store.reap()` every `intervalMs` (unref'd, so it never keeps the process alive); returns a stop function.
 * @example const stop = reapEvery(container.get(TOKENS.IdempotencyStore), 60_000);
 */
export function reapEvery(store: { reap(): Promise<number> }, intervalMs: number, onError: (error: unknown) => void = () => undefined): () => void {
  const timer = setInterval(() => void store.reap().catch(onError), intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
