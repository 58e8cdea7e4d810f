// The sample's HTTP routes, declared next to the requests they send: `routes()` serves them (body, path and query
// into the request, Idempotency-Key, the actor, problem+json) and `openapi()` documents them.
import { get, post, routes, type Route, type Routes } from '../adapters/http/index.js';
import { GetJob } from '../lib/jobs/index.js';
import type { Mediator } from '../lib/core/index.js';
import { GetAuditLog } from './audit/index.js';
import { actorFrom, UNAUTHENTICATED } from './http/actor.js';
import { SAMPLE_PROBLEMS } from './http/reply.js';
import { GetInventory, GetLowStockAlerts, GetMovements, MoveInventory, ReceiveStock } from './inventory/index.js';
import { CancelOrder, FulfilOrder, GetOrder, PayOrder, PlaceOrder, ShipOrder } from './orders/index.js';
import { GetSales } from './sales/index.js';
import { GetCheckout, StartCheckout } from './checkout/index.js';

/** Every route the mediator answers (GET /audit/export, the probes and the docs are written by hand in app.ts). */
export const SAMPLE_ROUTES: readonly Route[] = [
  post('/inventory/receipts', ReceiveStock, { summary: 'Receive stock into a bin (managers)' }),
  post('/inventory/moves', MoveInventory, {
    codes: ['insufficient_stock'],
    summary: 'Move stock between two bins (clerks and managers)',
  }),
  get('/inventory/:productId', GetInventory, { summary: 'The quantity in every bin of a product' }),
  get('/inventory/:productId/movements', GetMovements, {
    query: ['limit'],
    summary: "A product's newest stock movements, newest first: who moved what, from where to where, and why",
  }),
  get('/inventory/:productId/alerts', GetLowStockAlerts, {
    query: ['limit'],
    summary: "A product's low-stock alerts, newest first, each with the job that sent it",
  }),
  post('/orders', PlaceOrder, { status: 201, summary: 'Place an order (the actor owns it)' }),
  post('/orders/:orderId/pay', PayOrder, { body: false, summary: 'Pay a placed order (its owner)' }),
  post('/orders/:orderId/ship', ShipOrder, {
    body: false,
    codes: ['insufficient_stock'],
    summary: 'Ship a paid order from its bin (clerks and managers)',
  }),
  post('/orders/:orderId/cancel', CancelOrder, {
    body: false,
    summary: 'Cancel a placed or paid order (its owner or a manager)',
  }),
  post('/orders/:orderId/fulfil', FulfilOrder, {
    body: false,
    codes: ['insufficient_stock'],
    summary: 'Pay and ship an order in one transaction (its owner, a clerk or manager)',
  }),
  get('/orders/:orderId', GetOrder, { summary: 'Read an order' }),
  post('/orders/:orderId/checkout', StartCheckout, {
    status: 202,
    location: (started) => `/processes/${started.processId}`,
    summary: 'Check a placed order out: reserve, charge the card, ship, as a process (its owner); 202 at once',
  }),
  get('/processes/:processId', GetCheckout, { summary: 'A checkout process: its state and steps (owner, manager)' }),
  get('/sales/:productId', GetSales, { summary: 'How many orders of a product were paid' }),
  get('/audit', GetAuditLog, { query: ['limit'], summary: 'The newest audit records, newest first' }),
  get('/jobs/:jobId', GetJob, { summary: 'A job: its state (queued, running, succeeded…), attempts and result' }),
];

/**
 * The sample's routes served through `mediator`: the actor from `X-Actor`/`X-Roles`, 401 for a command without
 * one, `insufficient_stock` as 409.
 * @example app.use(express.json({ limit: 32_768 }), sampleRoutes(mediator, 32_768).express);
 */
export function sampleRoutes(mediator: Mediator, bodyLimit: number): Routes {
  return routes(mediator, SAMPLE_ROUTES, {
    bodyLimit, // the body parser's (app.ts), for a body it left unread
    ...SAMPLE_PROBLEMS,
    actor: actorFrom,
    unauthenticated: UNAUTHENTICATED,
    requireActor: 'commands',
    // The sample's HTTP contract predates the declared routes and is public: another method on a known path stays a
    // 404, and a body express.json() skips (another content type) stays absent, so validation answers it 422.
    methodNotAllowed: false,
    parsedBodiesOnly: true,
    caseSensitive: false, // Express matched /Inventory/sku-1 as /inventory/sku-1
  });
}
