// The OpenAPI 3.1 document of declared routes, validated against the OpenAPI 3.1 schema, and the docs page.
import { runInNewContext } from 'node:vm';
import { Validator } from '@seriousme/openapi-schema-validator';
import { toJsonSchema, toStandardJsonSchema } from '@valibot/to-json-schema';
import * as v from 'valibot';
import { docsPage, get, openapi, post, type OpenApiDocument } from '../../../adapters/http/index.js';
import { Command, Query } from '../../../lib/core/index.js';
import { bankApp, ROUTES } from '../../support/routes-app.js';
import { expect } from '../../support/helpers.js';

const INFO = { title: 'Bank', version: '1.2.3' };

async function expectValid(doc: OpenApiDocument): Promise<void> {
  const validator = new Validator();
  const result = await validator.validate(JSON.parse(JSON.stringify(doc)) as Record<string, unknown>);
  expect(result.errors, JSON.stringify(result.errors, null, 2)).to.equal(undefined);
  expect(result.valid).to.equal(true);
  expect(validator.version).to.equal('3.1');
  for (const ref of refs(doc)) expect(resolve(doc, ref), `${ref} resolves`).not.to.equal(undefined);
}

/** Every `$ref` in a value. */
function refs(value: unknown): string[] {
  if (typeof value !== 'object' || value === null) return [];
  return Object.entries(value).flatMap(([key, inner]) =>
    key === '$ref' && typeof inner === 'string' ? [inner] : refs(inner),
  );
}

function resolve(doc: unknown, ref: string): unknown {
  return ref
    .slice(2)
    .split('/')
    .reduce<any>((node, key) => node?.[key.replace(/~1/g, '/').replace(/~0/g, '~')], doc);
}

/** The kinds, and the codes, a problem response names. */
function problems(
  doc: OpenApiDocument,
  path: string,
  method: string,
): Record<string, { kinds: string[]; codes?: string[] }> {
  const responses = doc.paths[path]?.[method]?.responses ?? {};
  return Object.fromEntries(
    Object.entries(responses)
      .filter(([, response]) => (response as any).content?.['application/problem+json'])
      .map(([status, response]) => {
        const [ref, narrowed] = (response as any).content['application/problem+json'].schema.allOf;
        expect(ref).to.deep.equal({ $ref: '#/components/schemas/Problem' });
        expect(narrowed.properties.status).to.deep.equal({ const: Number(status) });
        const codes = narrowed.properties.code?.enum;
        return [status, { kinds: narrowed.properties.kind.enum, ...(codes ? { codes } : {}) }];
      }),
  );
}

describe('openapi()', () => {
  const { api } = bankApp({ domainStatus: { account_frozen: 409 } });
  const doc = openapi(api, { ...INFO, toJsonSchema, description: 'Money in, money out' });

  it('should build a document the OpenAPI 3.1 schema accepts, with every $ref resolving', async () => {
    expect(doc).to.deep.include({ openapi: '3.1.0', info: { ...INFO, description: 'Money in, money out' } });
    await expectValid(doc);
  });

  it('should list every declared route under its OpenAPI path and method', () => {
    const declared = ROUTES.map((route) => `${route.method.toLowerCase()} ${route.path.replace(/:(\w+)/g, '{$1}')}`);
    const documented = Object.entries(doc.paths).flatMap(([path, operations]) =>
      Object.keys(operations).map((method) => `${method} ${path}`),
    );
    expect(documented).to.have.members(declared);
    expect(Object.values(doc.paths).flatMap((ops) => Object.values(ops).map((op) => op.operationId))).to.deep.equal([
      'Deposit',
      'GetAccount',
      'CloseAccount',
      'Misbehave',
      'Explode',
    ]);
  });

  it('should take the body, path and query parameters from the command schema, each field in one place', () => {
    const deposit = doc.paths['/accounts/{accountId}/deposits']?.post;
    expect(deposit?.summary).to.equal('Deposit money');
    expect(deposit?.tags).to.deep.equal(['accounts']);
    expect(deposit?.parameters).to.deep.equal([
      {
        name: 'accountId',
        in: 'path',
        required: true,
        schema: { type: 'string', pattern: '^[a-z0-9-]{1,32}$' },
      },
      { name: 'note', in: 'query', required: false, schema: { type: 'string', maxLength: 40 } },
      {
        name: 'Idempotency-Key',
        in: 'header',
        required: false,
        description: 'Sending the same key again replays the first result (marked Idempotent-Replayed: true)',
        schema: { type: 'string', minLength: 1, maxLength: 255, pattern: '^[\\x21-\\x7e]+$' },
      },
    ]);
    expect(deposit?.requestBody).to.deep.equal({
      required: true,
      content: {
        'application/json': {
          schema: {
            type: 'object',
            properties: { amount: { type: 'integer', minimum: 1, maximum: 1000 } },
            required: ['amount'],
          },
        },
      },
    });
    const read = doc.paths['/accounts/{accountId}']?.get;
    expect(read?.requestBody, 'a GET has no body').to.equal(undefined);
    expect(read?.parameters.map((p) => `${p.in} ${p.name}`)).to.deep.equal([
      'path accountId',
      'query currency',
      'query tags',
    ]);
    expect(read?.parameters[1]).to.deep.include({ required: false, schema: { type: 'string', enum: ['EUR', 'USD'] } });
    expect(doc.paths['/misbehave/{kind}']?.post?.requestBody, 'declared without a body').to.equal(undefined);
  });

  it('should give the success status with the result schema (any JSON without one), 204 without content', () => {
    expect(doc.paths['/accounts/{accountId}/deposits']?.post?.responses['201']).to.deep.equal({
      description: 'Success',
      headers: {
        'Idempotent-Replayed': { description: 'true on a replay of an idempotent request', schema: { const: 'true' } },
      },
      content: {
        'application/json': {
          schema: {
            type: 'object',
            properties: {
              accountId: { type: 'string' },
              balance: { type: 'number' },
              note: { anyOf: [{ type: 'string' }, { type: 'null' }] },
            },
            required: ['accountId', 'balance', 'note'],
          },
        },
      },
    });
    expect(doc.paths['/accounts/{accountId}']?.get?.responses['200']).to.deep.equal({
      description: 'Success',
      content: { 'application/json': { schema: {} } },
    });
    expect(doc.paths['/accounts/{accountId}']?.delete?.responses['204']).to.not.have.property('content');
  });

  it('should answer every failure kind that applies as problem+json, the domain codes at their statuses', () => {
    expect(problems(doc, '/accounts/{accountId}/deposits', 'post')).to.deep.equal({
      400: { kinds: ['bad_request', 'malformed_json'] },
      401: { kinds: ['unauthenticated'] },
      403: { kinds: ['forbidden'] },
      404: { kinds: ['not_found'] },
      409: { kinds: ['invalid_transition', 'conflict', 'in_progress', 'domain'], codes: ['account_frozen'] },
      413: { kinds: ['payload_too_large'] },
      415: { kinds: ['unsupported_media_type'] },
      422: { kinds: ['validation', 'idempotency_mismatch', 'domain'], codes: ['limit_exceeded'] },
      500: { kinds: ['internal'] },
      503: { kinds: ['unavailable'] },
    });
    expect(problems(doc, '/accounts/{accountId}', 'get'), 'a query: no actor needed, no body, no key').to.deep.equal({
      400: { kinds: ['bad_request'] },
      403: { kinds: ['forbidden'] },
      404: { kinds: ['not_found'] },
      422: { kinds: ['validation'] },
      500: { kinds: ['internal'] },
      503: { kinds: ['unavailable'] },
    });
    expect(problems(doc, '/misbehave/{kind}', 'post')['422']).to.deep.equal({
      kinds: ['validation', 'idempotency_mismatch', 'domain'],
      codes: ['teapot'],
    });
    const responses = doc.paths['/accounts/{accountId}/deposits']?.post?.responses ?? {};
    expect(responses['409']?.description).to.equal(
      'Problem: invalid_transition, conflict, in_progress, domain (account_frozen)',
    );
    expect(doc.components.schemas.Problem).to.deep.include({ required: ['type', 'status', 'title', 'kind', 'detail'] });
  });

  it('should take a plain route list, with domainStatus and requireActor from its options', () => {
    const plain = openapi(ROUTES, { ...INFO, toJsonSchema, requireActor: 'none' });
    expect(problems(plain, '/accounts/{accountId}/deposits', 'post')['422']?.codes).to.deep.equal([
      'account_frozen',
      'limit_exceeded',
    ]);
    expect(problems(plain, '/accounts/{accountId}/deposits', 'post')).not.to.have.property('401');
  });

  it('should use a schema’s own Standard JSON Schema when no converter is given', async () => {
    class Rename extends Command(
      toStandardJsonSchema(v.object({ productId: v.string(), name: v.pipe(v.string(), v.minLength(1)) })),
    )<void, 'taken'> {}
    const document = openapi([post('/products/:productId/name', Rename, { codes: ['taken'] })], INFO);
    expect(document.paths['/products/{productId}/name']?.post?.requestBody).to.deep.equal({
      required: true,
      content: {
        'application/json': {
          schema: { type: 'object', properties: { name: { type: 'string', minLength: 1 } }, required: ['name'] },
        },
      },
    });
    await expectValid(document);
  });

  it('should say how to fix a schema that offers no JSON Schema', () => {
    expect(() => openapi(ROUTES, INFO)).to.throw(
      /POST \/accounts\/:accountId\/deposits \(Deposit\): the valibot schema offers no JSON Schema — pass a converter/,
    );
    expect(() => openapi(ROUTES, INFO)).to.throw(/toJsonSchema from '@valibot\/to-json-schema'/);
  });

  it('should name the route whose schema does not convert', () => {
    const toJsonSchema = () => {
      throw new Error('The "trim" action cannot be converted to JSON Schema.');
    };
    expect(() => openapi(ROUTES, { ...INFO, toJsonSchema })).to.throw(
      /POST \/accounts\/:accountId\/deposits \(Deposit\): its schema does not convert to JSON Schema: The "trim"/,
    );
  });

  it('should move the definitions a schema uses to the components, prefixed when a name is taken', async () => {
    interface Node {
      name: string;
      children: Node[];
    }
    const node: v.GenericSchema<Node> = v.object({ name: v.string(), children: v.array(v.lazy(() => node)) });
    const label = v.object({ text: v.string() });
    class SaveTree extends Command(v.object({ treeId: v.string(), root: node }))<void> {}
    class GetTree extends Query(v.object({ treeId: v.string() }))<Node> {}
    class Label extends Command(v.object({ treeId: v.string(), label }))<void> {}
    const document = openapi(
      [
        post('/trees/:treeId', SaveTree),
        get('/trees/:treeId', GetTree, { response: node }),
        post('/trees/:treeId/labels', Label),
      ],
      {
        ...INFO,
        toJsonSchema: (schema, config) =>
          toJsonSchema(schema, { ...config, definitions: schema === Label.schema ? { node: label } : { node } }),
      },
    );
    expect(Object.keys(document.components.schemas)).to.have.members(['Problem', 'node', 'Label.node']);
    expect(document.components.schemas['Label.node']).to.deep.equal({
      type: 'object',
      properties: { text: { type: 'string' } },
      required: ['text'],
    });
    expect(refs(document.paths).filter((ref) => !ref.endsWith('/Problem'))).to.have.members([
      '#/components/schemas/node',
      '#/components/schemas/node',
      '#/components/schemas/Label.node',
    ]);
    await expectValid(document);
  });
});

describe('docsPage()', () => {
  it('should be one self-contained page that loads nothing from elsewhere', () => {
    const html = docsPage('/openapi.json', { title: 'Bank <API>' });
    expect(html).to.match(/^<!doctype html>/);
    expect(html).to.include('<title>Bank &#60;API&#62;</title>');
    expect(html).to.include("connect-src 'self'");
    expect(html).not.to.match(/\b(?:src|href)=|https?:\/\/|@import|url\(/);
  });

  it('should keep a hostile spec URL inside its string literal', () => {
    const html = docsPage('/x</script><script>alert(1)</script>');
    expect(html.match(/<\/script>/g)).to.have.length(1);
    expect(html).to.include('const SPEC_URL = "/x\\u003c/script>\\u003cscript>alert(1)\\u003c/script>";');
  });

  it('should render every operation, its parameters, body and responses, and the schemas', async () => {
    const doc = openapi(bankApp().api, { ...INFO, toJsonSchema });
    const html = docsPage('/openapi.json');
    const script = /<script>([\s\S]*)<\/script>/.exec(html)?.[1] ?? '';
    const text = await renderWithFakeDom(script, doc);
    expect(text).to.include('Bank 1.2.3');
    for (const [path, operations] of Object.entries(doc.paths))
      for (const method of Object.keys(operations)) expect(text).to.include(`${method}${path}`);
    expect(text).to.include('Request body (application/json)').and.include('"amount"');
    expect(text).to.include('note').and.include('422 Problem: validation').and.include('"limit_exceeded"');
    expect(text).to.include('Problem');
    const failing = await renderWithFakeDom(script, undefined);
    expect(failing).to.include('Could not load the document: /openapi.json answered 404');
  });
});

/** Runs the page's script against a minimal DOM and a fetch that serves `doc` (404 when undefined): the text shown. */
async function renderWithFakeDom(script: string, doc: unknown): Promise<string> {
  interface FakeNode {
    textContent: string;
    className: string;
    href: string;
    children: FakeNode[];
    append(...nodes: FakeNode[]): void;
    replaceChildren(...nodes: FakeNode[]): void;
  }
  const node = (): FakeNode => ({
    textContent: '',
    className: '',
    href: '',
    children: [],
    append(...nodes) {
      this.children.push(...nodes);
    },
    replaceChildren(...nodes) {
      this.children = nodes;
    },
  });
  const root = node();
  let done!: () => void;
  const finished = new Promise<void>((resolve) => (done = resolve));
  const fetch = async (url: string) => {
    expect(url).to.equal('/openapi.json');
    setTimeout(done, 10);
    return doc === undefined ? { ok: false, status: 404 } : { ok: true, json: async () => doc };
  };
  const document = { title: '', createElement: node, getElementById: (id: string) => (id === 'api' ? root : null) };
  runInNewContext(script, { document, fetch, JSON, Object });
  await finished;
  const text = (n: FakeNode): string => n.textContent + n.children.map(text).join('');
  return text(root);
}
