// The sample HTTP service end to end over real HTTP: the order lifecycle, idempotent replays and the audit log.
import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import { backends, clerk, expectProblem, manager, unique, useSampleApp } from './server-world.js';

for (const [backendName, open] of backends) {
  describe(`samples/ HTTP service on ${backendName}`, () => {
    const { call, receive, binsOf, placeOrder, publishedFor } = useSampleApp(open);

    describe('orders', () => {
      it('should run place → pay → ship, take the stock and publish each event once with distinct ids', async () => {
        const productId = unique('sku');
        await receive(productId, 'A', 10);
        const placed = await call('POST', '/orders', { actor: 'alice', body: { productId, binId: 'A', qty: 3 } });
        expect(placed.status).to.equal(201);
        expect(placed.body.status).to.equal('placed');
        const { orderId } = placed.body;
        expect(orderId).to.match(/^[0-9a-f-]{36}$/);

        expect((await call('POST', `/orders/${orderId}/pay`, { actor: 'alice' })).body).to.deep.equal({
          orderId,
          status: 'paid',
        });
        expect((await call('POST', `/orders/${orderId}/ship`, clerk)).body).to.deep.equal({
          orderId,
          status: 'shipped',
        });

        expect((await call('GET', `/orders/${orderId}`)).body).to.deep.equal({
          orderId,
          status: 'shipped',
          productId,
          binId: 'A',
          qty: 3,
          owner: 'alice',
        });
        expect(await binsOf(productId)).to.deep.equal({ A: 7 });

        const events = await publishedFor(orderId);
        expect(events.map((e) => e.type)).to.deep.equal(['order.placed', 'order.paid', 'order.shipped']);
        expect(new Set(events.map((e) => e.id)).size).to.equal(3);
        expect(events[0]!.payload).to.deep.equal({ orderId, productId, binId: 'A', qty: 3, owner: 'alice' });
        expect(events[2]!.payload).to.deep.equal({ orderId, productId, binId: 'A', qty: 3 });
      });

      it('should answer 403 when someone other than the owner pays, leaving the order placed', async () => {
        const orderId = await placeOrder('alice', { productId: unique('sku'), binId: 'A', qty: 1 });
        const reply = await call('POST', `/orders/${orderId}/pay`, { actor: 'mallory', roles: 'manager' });
        expectProblem(reply, 403, 'forbidden');
        expect((await call('GET', `/orders/${orderId}`)).body.status).to.equal('placed');
      });

      it('should answer 409 invalid_transition with from, to and allowed when shipping an unpaid order', async () => {
        const orderId = await placeOrder('alice', { productId: unique('sku'), binId: 'A', qty: 1 });
        const reply = await call('POST', `/orders/${orderId}/ship`, clerk);
        expectProblem(reply, 409, 'invalid_transition');
        expect(reply.body).to.deep.include({ from: 'placed', to: 'shipped', allowed: ['paid'] });
      });

      it('should answer 409 insufficient_stock when shipping more than the bin holds, keeping the order paid', async () => {
        const productId = unique('sku');
        await receive(productId, 'A', 2);
        const orderId = await placeOrder('alice', { productId, binId: 'A', qty: 5 });
        await call('POST', `/orders/${orderId}/pay`, { actor: 'alice' });

        const reply = await call('POST', `/orders/${orderId}/ship`, manager);
        expectProblem(reply, 409, 'domain');
        expect(reply.body.code).to.equal('insufficient_stock');
        expect((await call('GET', `/orders/${orderId}`)).body.status).to.equal('paid');
        expect(await binsOf(productId)).to.deep.equal({ A: 2 });
        expect((await publishedFor(orderId)).map((e) => e.type)).to.deep.equal(['order.placed', 'order.paid']);
      });

      it('should let a manager or the owner cancel, forbid anyone else, and refuse to pay a cancelled order', async () => {
        const productId = unique('sku');
        const byManager = await placeOrder('alice', { productId, binId: 'A', qty: 1 });
        expectProblem(await call('POST', `/orders/${byManager}/cancel`, clerk), 403, 'forbidden');
        expect((await call('POST', `/orders/${byManager}/cancel`, manager)).body).to.deep.equal({
          orderId: byManager,
          status: 'cancelled',
        });

        const byOwner = await placeOrder('bob', { productId, binId: 'A', qty: 1 });
        await call('POST', `/orders/${byOwner}/pay`, { actor: 'bob' });
        expect((await call('POST', `/orders/${byOwner}/cancel`, { actor: 'bob' })).status).to.equal(200);

        const payCancelled = await call('POST', `/orders/${byManager}/pay`, { actor: 'alice' });
        expectProblem(payCancelled, 409, 'invalid_transition');
        expect(payCancelled.body).to.deep.include({ from: 'cancelled', to: 'paid', allowed: ['placed'] });
        expect((await publishedFor(byManager)).map((e) => e.type)).to.deep.equal(['order.placed', 'order.cancelled']);
      });

      it('should answer 404 for an unknown order and 422 for an id that is not an order id', async () => {
        const orderId = randomUUID();
        expectProblem(await call('GET', `/orders/${orderId}`), 404, 'not_found');
        expectProblem(await call('POST', `/orders/${orderId}/pay`, { actor: 'alice' }), 404, 'not_found');
        const malformed = await call('POST', '/orders/not-an-id/cancel', manager);
        expectProblem(malformed, 422, 'validation');
        expect(malformed.body.issues[0].path).to.equal('orderId');
      });
    });

    describe('idempotency', () => {
      it('should replay the same status and body with Idempotent-Replayed and move the stock once', async () => {
        const productId = unique('sku');
        await receive(productId, 'A', 10);
        const move = {
          ...clerk,
          idempotencyKey: unique('key'),
          body: { productId, fromBinId: 'A', toBinId: 'B', qty: 3, reason: 'x' },
        };
        const first = await call('POST', '/inventory/moves', move);
        const second = await call('POST', '/inventory/moves', move);
        expect(first.status).to.equal(200);
        expect(first.headers.get('idempotent-replayed')).to.equal(null);
        expect(second.status).to.equal(200);
        expect(second.headers.get('idempotent-replayed')).to.equal('true');
        expect(second.body).to.deep.equal(first.body);
        expect(await binsOf(productId)).to.deep.equal({ A: 7, B: 3 });
      });

      it('should replay a stored order creation with its 201 and the same order id', async () => {
        const order = {
          actor: 'alice',
          idempotencyKey: unique('key'),
          body: { productId: unique('sku'), binId: 'A', qty: 1 },
        };
        const first = await call('POST', '/orders', order);
        const second = await call('POST', '/orders', order);
        expect([first.status, second.status]).to.deep.equal([201, 201]);
        expect(second.body).to.deep.equal(first.body);
        expect(second.headers.get('idempotent-replayed')).to.equal('true');
      });

      it('should answer 422 idempotency_mismatch when a key is reused with another body', async () => {
        const productId = unique('sku');
        await receive(productId, 'A', 10);
        const idempotencyKey = unique('key');
        const move = (qty: number) => ({
          ...clerk,
          idempotencyKey,
          body: { productId, fromBinId: 'A', toBinId: 'B', qty, reason: 'x' },
        });
        expect((await call('POST', '/inventory/moves', move(3))).status).to.equal(200);
        expectProblem(await call('POST', '/inventory/moves', move(4)), 422, 'idempotency_mismatch');
        expect(await binsOf(productId)).to.deep.equal({ A: 7, B: 3 });
      });
    });

    describe('audit', () => {
      it('should list records newest first with ok, forbidden, invalid_transition and domain outcomes', async () => {
        const actor = unique('clerk');
        const asClerk = { actor, roles: 'clerk' };
        const productId = unique('sku');
        await call('POST', '/inventory/receipts', { ...asClerk, body: { productId, binId: 'A', qty: 1 } });
        const orderId = await placeOrder(actor, { productId, binId: 'A', qty: 1 });
        await call('POST', `/orders/${orderId}/ship`, asClerk);
        await call('POST', '/inventory/moves', {
          ...asClerk,
          body: { productId, fromBinId: 'A', toBinId: 'B', qty: 1, reason: 'x' },
        });

        const reply = await call('GET', '/audit?limit=20');
        expect(reply.status).to.equal(200);
        const mine = reply.body.filter((record: { actor: string }) => record.actor === actor);
        expect(mine.map(({ type, outcome, code }: Record<string, string>) => ({ type, outcome, code }))).to.deep.equal([
          { type: 'MoveInventory', outcome: 'domain', code: 'insufficient_stock' },
          { type: 'ShipOrder', outcome: 'invalid_transition', code: undefined },
          { type: 'PlaceOrder', outcome: 'ok', code: undefined },
          { type: 'ReceiveStock', outcome: 'forbidden', code: undefined },
        ]);
        expect(Object.keys(mine[1]).sort()).to.deep.equal(['actor', 'at', 'id', 'outcome', 'type']);
        const times = mine.map((record: { at: string }) => Date.parse(record.at));
        expect(times).to.deep.equal([...times].sort((a, b) => b - a));
      });

      it('should honour ?limit and reject a limit out of range', async () => {
        await receive(unique('sku'), 'A', 1);
        await receive(unique('sku'), 'A', 1);
        expect((await call('GET', '/audit?limit=2')).body).to.have.length(2);
        const zero = await call('GET', '/audit?limit=0');
        expectProblem(zero, 422, 'validation');
        expect(zero.body.issues[0].path).to.equal('limit');
      });
    });
  });
}
