// Test helpers: wait for everything committed so far to be published and consumed.
import type { Container } from 'inversify';
import type { Relay } from '../core/ports.js';
import type { MessageSource } from '../messaging/ports.js';
import { TOKENS } from '../core/tokens.js';

/**
 * Resolves once the relay has published every message committed so far and this process's consumers have
 * handled what they received (retries included); rejects when the relay cannot drain within `timeoutMs`.
 * @example await mediator.send(PlaceOrder.from(body)); await settled(container); expect(shipped).to.have.length(1);
 */
export async function settled(container: Container, timeoutMs = 10_000): Promise<void> {
  await container.get<Relay>(TOKENS.Relay).drain(timeoutMs);
  await container.get<MessageSource>(TOKENS.MessageSource, { optional: true })?.idle();
}
