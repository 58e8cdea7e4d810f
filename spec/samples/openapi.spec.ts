// The sample's declared routes: the OpenAPI 3.1 document it serves lists each of them, /docs renders it without
// reaching outside the machine, and where the declared routes would answer otherwise than the hand-written ones
// they replaced (405, 415, OPTIONS) the sample keeps its public contract — the rest of it is spec/samples.spec.ts.
import { readFileSync } from 'node:fs';
import { Validator } from '@seriousme/openapi-schema-validator';
import { createApp, createMemoryContainer } from '../../samples/app.js';
import { SAMPLE_ROUTES } from '../../samples/routes.js';
import { expect } from '../support/helpers.js';
import { serve } from '../support/serve.js';

const VERSION = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version;

describe('samples/: declared routes, GET /openapi.json and GET /docs', () => {
  let base: string;
  let close: () => Promise<void>;
  before(async () => {
    ({ url: base, close } = await serve(createApp(createMemoryContainer()).app));
  });
  after(() => close());

  const manager = { 'X-Actor': 'manager-1', 'X-Roles': 'manager' };

  it('should serve an OpenAPI 3.1 document that validates and lists every declared route with its method', async () => {
    const response = await fetch(`${base}/openapi.json`);
    expect(response.status).to.equal(200);
    expect(response.headers.get('content-type')).to.match(/^application\/json/);
    const doc = (await response.json()) as any;
    const validator = new Validator();
    const result = await validator.validate(doc);
    expect(result.errors, JSON.stringify(result.errors, null, 2)).to.equal(undefined);
    expect(result.valid).to.equal(true);
    expect(validator.version).to.equal('3.1');
    expect(doc.info).to.deep.equal({ title: 'usecasecore sample', version: VERSION });

    const documented = Object.entries(doc.paths as Record<string, Record<string, unknown>>).flatMap(
      ([path, operations]) => Object.keys(operations).map((method) => `${method.toUpperCase()} ${path}`),
    );
    const declared = SAMPLE_ROUTES.map((route) => `${route.method} ${route.path.replace(/:(\w+)/g, '{$1}')}`);
    expect(declared).to.have.length(16);
    expect(documented).to.include.members(declared);
    // Beyond the declared routes, the hand-written ones the service also answers.
    expect(documented.filter((route) => !declared.includes(route))).to.have.members([
      'GET /audit/export',
      'GET /health',
      'GET /ready',
    ]);
    expect(Object.keys(doc.paths['/audit/export'].get.responses['200'].content)).to.deep.equal([
      'application/x-ndjson',
    ]);
  });

  it('should document the domain codes, the 201 of a placed order and the 401 of commands', async () => {
    const doc = (await (await fetch(`${base}/openapi.json`)).json()) as any;
    const move = doc.paths['/inventory/moves'].post;
    const conflict = move.responses['409'].content['application/problem+json'].schema.allOf[1];
    expect(conflict.properties.code.enum).to.deep.equal(['insufficient_stock']); // domainStatus: 409
    expect(move.responses).to.have.property('401');
    expect(doc.paths['/orders'].post.responses).to.have.property('201');
    expect(doc.paths['/orders/{orderId}/pay'].post.requestBody, 'the id is in the path only').to.equal(undefined);
    expect(doc.paths['/inventory/{productId}'].get.responses, 'a query needs no actor').not.to.have.property('401');
    expect(doc.paths['/audit'].get.parameters.map((p: { name: string }) => p.name)).to.deep.equal(['limit']);
  });

  it('should serve /docs as HTML that renders /openapi.json and loads nothing from outside', async () => {
    const response = await fetch(`${base}/docs`);
    expect(response.status).to.equal(200);
    expect(response.headers.get('content-type')).to.match(/^text\/html/);
    const html = await response.text();
    expect(html).to.match(/^<!doctype html>/i);
    expect(html).to.include('"/openapi.json"');
    expect(html, 'no absolute URL: no CDN, no font, no script from elsewhere').not.to.match(/https?:\/\//i);
    expect(html).to.include("default-src 'none'");
  });

  describe('the contract the hand-written routes had, kept', () => {
    it('should answer another method on a known path 404, as before (routes({ methodNotAllowed: false }))', async () => {
      const put = await fetch(`${base}/inventory/receipts`, { method: 'PUT' });
      expect(put.status).to.equal(404);
      expect(await put.json()).to.deep.include({ status: 404, kind: 'route_not_found' });
      expect((await fetch(`${base}/audit`, { method: 'POST' })).status).to.equal(404);
    });

    it('should answer OPTIONS on a known path as Express did: 200, Allow and the methods as text', async () => {
      const options = await fetch(`${base}/inventory/receipts`, { method: 'OPTIONS' });
      expect(options.status).to.equal(200);
      expect(options.headers.get('allow')).to.equal('GET, HEAD, POST'); // GET: /inventory/:productId takes 'receipts'
      expect(options.headers.get('content-type')).to.equal('text/plain');
      expect(await options.text()).to.equal('GET, HEAD, POST');
    });

    it('should answer a body that is not JSON as a missing body: 422 validation, as before', async () => {
      const reply = await fetch(`${base}/inventory/receipts`, {
        method: 'POST',
        headers: { ...manager, 'Content-Type': 'text/plain' },
        body: '{"productId":"p","binId":"A","qty":1}',
      });
      expect(reply.status).to.equal(422);
      expect(reply.headers.get('content-type')).to.match(/^application\/problem\+json/);
      expect(await reply.json()).to.deep.include({ kind: 'validation' });
    });

    it('should still match paths regardless of case, as Express did, and leave path parameters as sent', async () => {
      const receipt = await fetch(`${base}/Inventory/RECEIPTS`, {
        method: 'POST',
        headers: { ...manager, 'Content-Type': 'application/json' },
        body: JSON.stringify({ productId: 'Case-1', binId: 'A', qty: 2 }),
      });
      expect(receipt.status).to.equal(200);
      expect(await (await fetch(`${base}/INVENTORY/Case-1`)).json()).to.deep.equal({
        productId: 'Case-1',
        bins: { A: 2 },
      });
      expect(await (await fetch(`${base}/inventory/RECEIPTS`)).json(), 'GET: a product id').to.deep.equal({
        productId: 'RECEIPTS',
        bins: {},
      });
      const unknown = await fetch(`${base}/INVENTORY/receipts`, { method: 'PUT' });
      expect(unknown.status, 'no route of that method: as before').to.equal(404);
    });
  });
});
