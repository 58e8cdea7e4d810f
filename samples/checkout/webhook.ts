// The payment provider's webhook: a signed `{ chargeId, status }` becomes ConfirmPayment, sent as the provider.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';
import { problem, toReply } from '../../adapters/http/index.js';
import type { Mediator } from '../../lib/core/index.js';
import { sendReply } from '../http/reply.js';
import { signature } from './psp.js';
import { ConfirmPayment } from './requests.js';

/**
 * The secret the provider signs its webhook calls with: `PSP_WEBHOOK_SECRET`, else one made at start (the stand-in
 * provider of this process calls back this process).
 */
export const WEBHOOK_SECRET = process.env.PSP_WEBHOOK_SECRET || randomBytes(32).toString('hex');

/** The provider's actor: the only one ConfirmPayment's rule lets in. */
const PROVIDER = { id: 'payment-provider', roles: ['psp'] };

/**
 * `POST /webhooks/psp`: 401 unless `X-Psp-Signature` is the body's HMAC under `secret` (anyone could confirm a
 * payment otherwise), then the confirmation's reply.
 * @example app.post('/webhooks/psp', pspWebhook(mediator, WEBHOOK_SECRET, console.error));
 */
export function pspWebhook(mediator: Mediator, secret: string, logError: (error: unknown) => void): RequestHandler {
  return (req, res) => {
    const given = Buffer.from(req.get('X-Psp-Signature') ?? '', 'utf8');
    const expected = Buffer.from(signature(secret, JSON.stringify(req.body ?? {})), 'utf8');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      sendReply(res, problem('unauthenticated', 'A webhook call must be signed by the payment provider'));
      return;
    }
    mediator.send(ConfirmPayment.from(req.body), { actor: PROVIDER }).then(
      (result) => sendReply(res, toReply(result)),
      (error: unknown) => {
        logError(error);
        sendReply(res, problem('internal', 'The confirmation could not be recorded'));
      },
    );
  };
}
