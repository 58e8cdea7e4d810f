// Test helpers: wait for everything committed so far, and all it causes, to be published and consumed.
import type { Container } from 'inversify';
import type { Outbox, Relay } from '../core/ports.js';
import { TOKENS } from '../core/tokens.js';
import type { MessageSource } from '../messaging/ports.js';

/**
 * Resolves once the relay has published every message committed so far and this process's consumers have handled
 * what they received (retries included) — and again for what their handling committed (a job's next job, a
 * process's next step), until nothing is left due; rejects when that takes longer than `timeoutMs`.
 * @example await mediator.send(PlaceOrder.from(body)); await settled(container); expect(shipped).to.have.length(1);
 */
export async function settled(container: Container, timeoutMs = 10_000): Promise<void> {
  const relay = container.get<Relay>(TOKENS.Relay);
  const outbox = container.get<Outbox>(TOKENS.Outbox);
  const source = container.get<MessageSource>(TOKENS.MessageSource, { optional: true });
  const deadline = Date.now() + timeoutMs;
  do {
    await relay.drain(Math.max(1, deadline - Date.now()));
    await source?.idle();
  } while ((await outbox.pending()) > 0);
}
