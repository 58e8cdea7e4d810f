// A stand-in payment provider, served by the sample under /psp and called over real HTTP: charges honour the
// Idempotency-Key, and test cards decline, fail for a while, answer slowly, or confirm later by a webhook.
import { createHmac, randomUUID } from 'node:crypto';
import express, { type Router } from 'express';
import type { Charge, ChargeStore } from './repository.js';

/** The test cards and what the provider does with them; any other card succeeds at once. */
export const TEST_CARDS = {
  declined: '4000000000000002',
  /** 503 to the first two requests under a key, then succeeds. */
  unavailableTwice: '4000000000000119',
  /** Succeeds after 3 s. */
  slow: '4000000000000259',
  /** Answers `pending`, and confirms about 1 s later through the webhook. */
  confirmsLater: '4000000000003220',
} as const;

/** Options of the stand-in provider. */
export interface PspOptions {
  /** The secret it signs its webhook calls with (`X-Psp-Signature`: the hex HMAC-SHA256 of the JSON body). */
  readonly secret: string;
  /** Where it says a pending charge succeeded: `{ chargeId, status }` is POSTed there. Default: the caller's host. */
  readonly webhookUrl?: string;
  /** How long the slow card takes, and how late a pending one confirms (ms). Defaults 3,000 and 1,000. */
  readonly slowMs?: number;
  readonly confirmAfterMs?: number;
}

/**
 * The provider's routes: `POST /charges` (JSON `{ orderId, card, amount }`, an Idempotency-Key is required),
 * `POST /charges/:chargeId/refunds`, `GET /charges?orderId=`.
 * @example app.use('/psp', pspRouter(container.get(CHARGE_STORE)));
 */
export function pspRouter(store: ChargeStore, options: PspOptions): Router {
  const { slowMs = 3_000, confirmAfterMs = 1_000 } = options;
  const router = express.Router();
  router.use(express.json({ limit: 4_096 }));
  router.post('/charges', async (req, res) => {
    const key = req.get('Idempotency-Key');
    const { orderId, card, amount } = (req.body ?? {}) as { orderId?: unknown; card?: unknown; amount?: unknown };
    if (!key || typeof orderId !== 'string' || typeof card !== 'string' || typeof amount !== 'number') {
      res.status(400).json({ error: 'send { orderId, card, amount } with an Idempotency-Key' });
      return;
    }
    const charge = await store.attempt(key, () => newCharge(key, orderId, card, amount));
    if (card === TEST_CARDS.unavailableTwice && charge.attempts <= 2) {
      res.status(503).json({ error: 'try again later' });
      return;
    }
    if (card === TEST_CARDS.slow && charge.attempts === 1) await new Promise((r) => setTimeout(r, slowMs));
    if (charge.status === 'pending' && charge.attempts === 1) {
      const webhook = options.webhookUrl ?? `${req.protocol}://${req.get('host')}/webhooks/psp`;
      setTimeout(() => void confirm(store, charge.chargeId, webhook, options.secret), confirmAfterMs).unref();
    }
    const final = charge.status === 'failing' ? { ...charge, status: 'succeeded' as const } : charge;
    if (final !== charge) await store.setStatus(charge.chargeId, 'succeeded');
    res.status(final.status === 'declined' ? 402 : 200).json(view(final));
  });
  router.post('/charges/:chargeId/refunds', async (req, res) => {
    const refunded = await store.setStatus(req.params.chargeId, 'refunded');
    if (refunded) res.json(view(refunded));
    else res.status(404).json({ error: `no charge ${req.params.chargeId}` });
  });
  router.get('/charges', async (req, res) => {
    const orderId = typeof req.query.orderId === 'string' ? req.query.orderId : '';
    res.json((await store.byOrder(orderId)).map(view));
  });
  return router;
}

function newCharge(key: string, orderId: string, card: string, amount: number): Charge {
  const status =
    card === TEST_CARDS.declined
      ? 'declined'
      : card === TEST_CARDS.confirmsLater
        ? 'pending'
        : card === TEST_CARDS.unavailableTwice
          ? 'failing'
          : 'succeeded';
  return {
    chargeId: `ch_${randomUUID().replace(/-/g, '').slice(0, 16)}`,
    key,
    orderId,
    amount,
    last4: card.slice(-4),
    status,
    attempts: 1,
    createdAt: new Date().toISOString(),
  };
}

/** Confirms a pending charge, then tells the merchant; a webhook that fails is tried again a few times. */
async function confirm(store: ChargeStore, chargeId: string, webhook: string, secret: string): Promise<void> {
  await store.setStatus(chargeId, 'succeeded');
  const body = JSON.stringify({ chargeId, status: 'succeeded' });
  for (let attempt = 1; attempt <= 5; attempt++) {
    const sent = await fetch(webhook, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'X-Psp-Signature': signature(secret, body) },
      body,
    }).then(
      (res) => res.ok,
      () => false,
    );
    if (sent) return;
    await new Promise((r) => setTimeout(r, 200 * attempt));
  }
}

/** The signature of a webhook body: the hex HMAC-SHA256 of its JSON under the shared secret. */
export function signature(secret: string, body: string): string {
  return createHmac('sha256', secret).update(body).digest('hex');
}

function view(charge: Charge) {
  const { chargeId, orderId, amount, last4, status, createdAt } = charge;
  return { chargeId, orderId, amount, last4, status: status === 'failing' ? 'pending' : status, createdAt };
}

/** The sample's client of the provider: the step's idempotency key on every request, so a retry never acts twice. */
export class PspClient {
  constructor(private readonly baseUrl: () => string) {}

  /** The charge's id and status, `declined`, or `unavailable` (a 5xx, a refused connection: try again later). */
  async charge(input: { orderId: string; card: string; amount: number }, key: string) {
    const res = await this.#post('/charges', key, input);
    if (!res) return { outcome: 'unavailable' as const };
    if (res.status === 402) return { outcome: 'declined' as const };
    if (!res.ok) return { outcome: 'unavailable' as const };
    const body = (await res.json()) as { chargeId: string; status: 'succeeded' | 'pending' };
    return { outcome: 'charged' as const, chargeId: body.chargeId, status: body.status };
  }

  /** True once refunded; false when the provider did not answer (try again later). */
  async refund(chargeId: string, key: string): Promise<boolean> {
    const res = await this.#post(`/charges/${encodeURIComponent(chargeId)}/refunds`, key, {});
    return res?.ok === true || res?.status === 404; // an unknown charge has nothing to refund
  }

  async #post(path: string, key: string, body: unknown): Promise<Response | undefined> {
    return fetch(`${this.baseUrl()}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'Idempotency-Key': key },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(15_000),
    }).catch(() => undefined);
  }
}

/** The container token of the PspClient. */
export const PSP_CLIENT = Symbol.for('usecasecore.samples.PspClient');
