// POST /orders/:orderId/fulfil: pay → ship as one transactional flow, its owner when also a clerk or manager;
// answered like ship, or with the first failure, which undoes the payment.
import { createApp, createMemoryContainer } from '../../samples/app.js';
import { expect } from '../support/helpers.js';
import { serve } from '../support/serve.js';

describe('samples/: POST /orders/:orderId/fulfil (a flow)', () => {
  let base: string;
  let close: () => Promise<void>;
  before(async () => {
    ({ url: base, close } = await serve(createApp(createMemoryContainer()).app));
  });
  after(() => close());

  const as = (actor: string, roles = '') => ({
    'X-Actor': actor,
    'X-Roles': roles,
    'Content-Type': 'application/json',
  });
  const call = async (method: string, path: string, headers: Record<string, string>, body?: unknown) => {
    const init = body === undefined ? { method, headers } : { method, headers, body: JSON.stringify(body) };
    const response = await fetch(`${base}${path}`, init);
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  };
  const place = async (owner: Record<string, string>, qty: number) => {
    const placed = await call('POST', '/orders', owner, { productId: 'flow-sku', binId: 'A', qty });
    expect(placed.status).to.equal(201);
    return placed.body.orderId as string;
  };
  const status = async (orderId: string) => (await call('GET', `/orders/${orderId}`, {})).body.status;

  before(async () => {
    const receipt = { productId: 'flow-sku', binId: 'A', qty: 5 };
    expect((await call('POST', '/inventory/receipts', as('mgr', 'manager'), receipt)).status).to.equal(200);
  });

  it('should pay and ship in one send and answer like ship', async () => {
    const alice = as('alice', 'clerk');
    const orderId = await place(alice, 2);
    const fulfilled = await call('POST', `/orders/${orderId}/fulfil`, alice);
    expect(fulfilled).to.deep.equal({ status: 200, body: { orderId, status: 'shipped' } });
    expect((await call('GET', '/inventory/flow-sku', {})).body).to.deep.include({ bins: { A: 3 } });
  });

  it('should undo the payment when shipping fails, and answer the failure (409 insufficient_stock)', async () => {
    const alice = as('alice', 'clerk');
    const orderId = await place(alice, 50);
    const short = await call('POST', `/orders/${orderId}/fulfil`, alice);
    expect(short.status).to.equal(409);
    expect(short.body).to.deep.include({ kind: 'domain', code: 'insufficient_stock' });
    expect(await status(orderId), 'the pay step rolled back with the flow').to.equal('placed');
  });

  it('should refuse a clerk who is not the owner, and an owner who is neither clerk nor manager', async () => {
    const owner = as('carol');
    const orderId = await place(owner, 1);
    const byOwner = await call('POST', `/orders/${orderId}/fulfil`, owner);
    expect(byOwner.status).to.equal(403);
    expect(byOwner.body.detail).to.equal('Only clerks and managers may fulfil orders');
    const byClerk = await call('POST', `/orders/${orderId}/fulfil`, as('bob', 'clerk'));
    expect(byClerk.status).to.equal(403);
    expect(byClerk.body.detail).to.equal("Only the order's owner may pay it");
    expect(await status(orderId)).to.equal('placed');
  });
});
