// The sample HTTP service's inventory routes end to end over real HTTP: receipts, moves, bins and their failures.
import { expect } from 'chai';
import { backends, clerk, expectProblem, manager, unique, useSampleApp } from './server-world.js';

for (const [backendName, open] of backends) {
  describe(`samples/ HTTP service on ${backendName}`, () => {
    const { call, receive, binsOf, newestAuditId, publishedFor } = useSampleApp(open);

    describe('inventory', () => {
      it('should receive stock, move part of it and report both bins', async () => {
        const productId = unique('sku');
        const receipt = await call('POST', '/inventory/receipts', {
          ...manager,
          body: { productId, binId: 'A', qty: 10 },
        });
        expect(receipt.status).to.equal(200);
        expect(receipt.body).to.deep.equal({ productId, binId: 'A', qtyAfter: 10 });

        const move = await call('POST', '/inventory/moves', {
          ...clerk,
          body: { productId, fromBinId: 'A', toBinId: 'B', qty: 4, reason: 'restock' },
        });
        expect(move.status).to.equal(200);
        expect(move.body).to.deep.equal({ sourceQtyAfter: 6, destQtyAfter: 4 });

        expect(await call('GET', `/inventory/${productId}`)).to.nested.include({
          status: 200,
          'body.productId': productId,
        });
        expect(await binsOf(productId)).to.deep.equal({ A: 6, B: 4 });
      });

      it('should publish stock.received and inventory.moved after commit', async () => {
        const productId = unique('sku');
        await receive(productId, 'A', 5);
        await call('POST', '/inventory/moves', {
          ...manager,
          body: { productId, fromBinId: 'A', toBinId: 'B', qty: 2, reason: 'x' },
        });
        const events = await publishedFor(productId);
        expect(events.map((e) => e.type)).to.deep.equal(['stock.received', 'inventory.moved']);
        expect(events[1]!.payload).to.include({
          productId,
          fromBinId: 'A',
          toBinId: 'B',
          qty: 2,
          sourceQtyAfter: 3,
          destQtyAfter: 2,
        });
      });

      it('should answer an unknown product with empty bins', async () => {
        const productId = unique('never-stocked');
        expect((await call('GET', `/inventory/${productId}`)).body).to.deep.equal({ productId, bins: {} });
      });

      it('should answer 401 to a write without X-Actor', async () => {
        const productId = unique('sku');
        expectProblem(
          await call('POST', '/inventory/receipts', { body: { productId, binId: 'A', qty: 1 } }),
          401,
          'unauthenticated',
        );
        expectProblem(
          await call('POST', '/inventory/receipts', {
            actor: '  ',
            roles: 'manager',
            body: { productId, binId: 'A', qty: 1 },
          }),
          401,
          'unauthenticated',
        );
        expectProblem(
          await call('POST', '/orders', { body: { productId, binId: 'A', qty: 1 } }),
          401,
          'unauthenticated',
        );
        expect(await binsOf(productId)).to.deep.equal({});
      });

      it('should answer 403 to a clerk receiving stock and write nothing', async () => {
        const productId = unique('sku');
        const reply = await call('POST', '/inventory/receipts', { ...clerk, body: { productId, binId: 'A', qty: 5 } });
        expectProblem(reply, 403, 'forbidden');
        expect(reply.body.detail).to.equal('Only managers may receive stock');
        expect(await binsOf(productId)).to.deep.equal({});
      });

      it('should answer 422 with issue paths for invalid input, writing nothing and auditing nothing', async () => {
        const productId = unique('sku');
        await receive(productId, 'A', 5);
        const auditBefore = await newestAuditId();

        const negative = await call('POST', '/inventory/receipts', {
          ...manager,
          body: { productId, binId: 'A', qty: -1 },
        });
        expectProblem(negative, 422, 'validation');
        expect(negative.body.issues).to.deep.equal([{ path: 'qty', message: 'Must be at least 1' }]);

        const missing = await call('POST', '/inventory/moves', {
          ...clerk,
          body: { productId, fromBinId: 'A', qty: 2, reason: 'x' },
        });
        expectProblem(missing, 422, 'validation');
        expect(missing.body.issues.map((issue: { path: string }) => issue.path)).to.deep.equal(['toBinId']);

        const sameBin = await call('POST', '/inventory/moves', {
          ...clerk,
          body: { productId, fromBinId: 'A', toBinId: 'A', qty: 1, reason: 'x' },
        });
        expect(sameBin.body.issues).to.deep.equal([{ path: 'toBinId', message: 'Must differ from fromBinId' }]);

        expect(await binsOf(productId)).to.deep.equal({ A: 5 });
        expect(await newestAuditId()).to.equal(auditBefore);
      });

      it('should answer 409 insufficient_stock to a move larger than the source bin and change nothing', async () => {
        const productId = unique('sku');
        await receive(productId, 'A', 3);
        const reply = await call('POST', '/inventory/moves', {
          ...clerk,
          body: { productId, fromBinId: 'A', toBinId: 'B', qty: 4, reason: 'x' },
        });
        expectProblem(reply, 409, 'domain');
        expect(reply.body).to.deep.include({ code: 'insufficient_stock', details: { available: 3, requested: 4 } });
        expect(await binsOf(productId)).to.deep.equal({ A: 3 });
        expect((await publishedFor(productId)).map((e) => e.type)).to.deep.equal(['stock.received']);
      });
    });
  });
}
