// Declared routes: the Fetch handler and the Express middleware over the mediator, on memory adapters.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import express from 'express';
import { expectTypeOf } from 'expect-type';
import * as v from 'valibot';
import {
  get,
  post,
  problemOfError,
  routes,
  type ExpressLikeRequest,
  type ExpressLikeResponse,
  type Route,
} from '../../../adapters/http/index.js';
import { Command, Query, type Mediator } from '../../../lib/core/index.js';
import { actor, bankApp, CloseAccount, Deposit, FAILURES, GetAccount } from '../../support/routes-app.js';
import { expect } from '../../support/helpers.js';

const clerk = { 'X-Actor': 'ann', 'X-Roles': 'clerk' };
const json = { 'Content-Type': 'application/json' };

/** A Fetch request to the fixture's host. */
function request(
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: RequestInit['body'],
): Request {
  return new Request(`http://bank.test${path}`, { method, headers, ...(body === undefined ? {} : { body }) });
}

async function read(response: Response): Promise<{ status: number; headers: Headers; body: any }> {
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text === '' ? undefined : JSON.parse(text) };
}

function expectProblem(reply: { status: number; headers: Headers; body: any }, status: number, kind: string): void {
  expect(reply.status, JSON.stringify(reply.body)).to.equal(status);
  expect(reply.headers.get('content-type')).to.match(/^application\/problem\+json(;|$)/); // Express adds a charset
  expect(reply.body).to.include({ type: 'about:blank', status, kind });
  expect(reply.body.detail).to.be.a('string').and.not.equal('');
}

describe('routes() as a Fetch handler', () => {
  it('should send the body and path parameter as the command and answer the route status with the value', async () => {
    const { api, bank } = bankApp();
    const reply = await read(
      await api.fetch(request('POST', '/accounts/a-1/deposits', { ...clerk, ...json }, '{"amount":5}')),
    );
    expect(reply.status).to.equal(201);
    expect(reply.headers.get('content-type')).to.equal('application/json');
    expect(reply.headers.has('idempotent-replayed')).to.equal(false);
    expect(reply.body).to.deep.equal({ accountId: 'a-1', balance: 5, note: null });
    expect(bank.balances.get('a-1')).to.equal(5);
  });

  it('should replay a repeated Idempotency-Key with Idempotent-Replayed and the first status and body', async () => {
    const { api, bank } = bankApp();
    const send = (amount: number) =>
      api.fetch(
        request(
          'POST',
          '/accounts/a-1/deposits',
          { ...clerk, ...json, 'Idempotency-Key': 'dep-1' },
          `{"amount":${amount}}`,
        ),
      );
    const first = await read(await send(5));
    const again = await read(await send(5));
    expect(again.status).to.equal(201);
    expect(again.headers.get('idempotent-replayed')).to.equal('true');
    expect(again.body).to.deep.equal(first.body);
    expect(bank.runs, 'the handler ran once').to.equal(1);
    expectProblem(await read(await send(6)), 422, 'idempotency_mismatch');
  });

  it('should answer a malformed Idempotency-Key with 422 before anything runs', async () => {
    const { api, bank } = bankApp();
    const bad = { ...clerk, ...json, 'Idempotency-Key': 'has space' };
    const reply = await read(await api.fetch(request('POST', '/accounts/a-1/deposits', bad, '{"amount":5}')));
    expectProblem(reply, 422, 'validation');
    expect(reply.body.issues[0].path).to.equal('idempotencyKey');
    expect(bank.runs).to.equal(0);
  });

  describe('failures', () => {
    const statuses: Record<keyof typeof FAILURES, number> = {
      validation: 422,
      forbidden: 403,
      not_found: 404,
      invalid_transition: 409,
      conflict: 409,
      idempotency_mismatch: 422,
      in_progress: 409,
      unavailable: 503,
    };
    for (const [kind, status] of Object.entries(statuses)) {
      it(`should answer a ${kind} failure with ${status} problem+json carrying its fields`, async () => {
        const { api } = bankApp();
        const reply = await read(await api.fetch(request('POST', `/misbehave/${kind}`, clerk)));
        expectProblem(reply, status, kind);
        const { kind: _kind, message, ...fields } = FAILURES[kind as keyof typeof FAILURES];
        expect(reply.body).to.deep.include({ detail: message, ...fields });
      });
    }

    it('should answer a domain code with its domainStatus, else 422, with code and details', async () => {
      const mapped = await read(
        await bankApp({ domainStatus: { teapot: 418 } }).api.fetch(request('POST', '/misbehave/domain', clerk)),
      );
      expectProblem(mapped, 418, 'domain');
      expect(mapped.body).to.deep.include({ code: 'teapot', details: { brew: 'tea' } });
      const plain = await read(await bankApp().api.fetch(request('POST', '/misbehave/domain', clerk)));
      expectProblem(plain, 422, 'domain');
    });

    it('should answer a body the schema rejects with 422 and its issues, a denied actor with 403', async () => {
      const { api, bank } = bankApp();
      const invalid = await read(
        await api.fetch(request('POST', '/accounts/a-1/deposits', { ...clerk, ...json }, '{"amount":0}')),
      );
      expectProblem(invalid, 422, 'validation');
      expect(invalid.body.issues.map((issue: { path: string }) => issue.path)).to.deep.equal(['amount']);
      const guest = { 'X-Actor': 'bob', ...json };
      expectProblem(
        await read(await api.fetch(request('POST', '/accounts/a-1/deposits', guest, '{"amount":5}'))),
        403,
        'forbidden',
      );
      expect(bank.runs).to.equal(0);
    });

    it('should answer 401 without an actor on commands (with the app’s detail) and let queries through', async () => {
      const { api } = bankApp({ unauthenticated: 'Send X-Actor' });
      const reply = await read(await api.fetch(request('POST', '/accounts/a-1/deposits', json, '{"amount":5}')));
      expectProblem(reply, 401, 'unauthenticated');
      expect(reply.body.detail).to.equal('Send X-Actor');
      expectProblem(await read(await api.fetch(request('GET', '/accounts/a-1'))), 404, 'not_found');
      const open = bankApp({ requireActor: 'none' }).api;
      expectProblem(
        await read(await open.fetch(request('POST', '/accounts/a-1/deposits', json, '{"amount":5}'))),
        403,
        'forbidden',
      );
      const closed = bankApp({ requireActor: 'all' }).api;
      expectProblem(await read(await closed.fetch(request('GET', '/accounts/a-1'))), 401, 'unauthenticated');
    });

    it('should answer an exception with a 500 that reveals nothing, reported to onError', async () => {
      const errors: unknown[] = [];
      const { api } = bankApp({ onError: (error) => errors.push(error) });
      const reply = await read(await api.fetch(request('POST', '/explode', { ...clerk, ...json }, '{}')));
      expectProblem(reply, 500, 'internal');
      expect(JSON.stringify(reply.body)).not.to.include('disk on fire');
      expect(errors.map((error) => (error as Error).message)).to.deep.equal(['disk on fire']);
    });
  });

  describe('what makes the request', () => {
    it('should take listed query parameters (a repeated one as an array) and ignore the others', async () => {
      const { api, bank } = bankApp();
      bank.balances.set('a-1', 7);
      const reply = await read(await api.fetch(request('GET', '/accounts/a-1?currency=USD&tags=x&tags=y&evil=1')));
      expect(reply.body).to.deep.equal({ accountId: 'a-1', balance: 7, currency: 'USD', tags: ['x', 'y'] });
      const deposit = await read(
        await api.fetch(request('POST', '/accounts/a-1/deposits?note=rent', { ...clerk, ...json }, '{"amount":1}')),
      );
      expect(deposit.body).to.deep.equal({ accountId: 'a-1', balance: 8, note: 'rent' });
      expectProblem(await read(await api.fetch(request('GET', '/accounts/a-1?currency=GBP'))), 422, 'validation');
    });

    it('should decode path parameters and answer malformed percent-encoding with 400', async () => {
      const { api, bank } = bankApp();
      bank.balances.set('a-1', 1);
      expect((await read(await api.fetch(request('GET', '/accounts/a%2D1')))).body.accountId).to.equal('a-1');
      expect((await read(await api.fetch(request('GET', '/accounts/a-1/')))).status, 'a trailing slash').to.equal(200);
      expectProblem(await read(await api.fetch(request('GET', '/accounts/%E0%A4%A'))), 400, 'bad_request');
      expectProblem(await read(await api.fetch(request('GET', '/accounts/A_1'))), 422, 'validation');
    });

    it('should accept a field in both the URL and the body when they agree, and answer 400 when not', async () => {
      const { api, bank } = bankApp();
      const deposit = (body: string) =>
        api.fetch(request('POST', '/accounts/a-1/deposits?note=n', { ...clerk, ...json }, body)).then(read);
      expect((await deposit('{"amount":1,"accountId":"a-1","note":"n"}')).status).to.equal(201);
      const clash = await deposit('{"amount":1,"accountId":"b-2"}');
      expectProblem(clash, 400, 'bad_request');
      expect(clash.body.detail).to.include("'accountId'");
      expectProblem(await deposit('{"amount":1,"note":"other"}'), 400, 'bad_request');
      expectProblem(await deposit('[1]'), 422, 'validation');
      expect([...bank.balances]).to.deep.equal([['a-1', 1]]);
    });

    it('should ignore the body of a route declared without one, and answer 204 with no body', async () => {
      const { api, bank } = bankApp();
      bank.balances.set('a-1', 1);
      const closed = await api.fetch(request('DELETE', '/accounts/a-1', { ...clerk, ...json }, '{"accountId":"b-2"}'));
      expect(closed.status).to.equal(204);
      expect(await closed.text()).to.equal('');
      expect(bank.balances.has('a-1')).to.equal(false);
      const teapot = await read(
        await api.fetch(request('POST', '/misbehave/domain', { ...clerk, 'Content-Type': 'text/plain' }, 'x')),
      );
      expectProblem(teapot, 422, 'domain');
    });
  });

  describe('bodies', () => {
    const deposit = (headers: Record<string, string>, body: RequestInit['body'], limit?: number) =>
      bankApp(limit === undefined ? {} : { bodyLimit: limit })
        .api.fetch(request('POST', '/accounts/a-1/deposits', { ...clerk, ...headers }, body))
        .then(read);

    it('should answer malformed JSON and bytes that are not UTF-8 with 400 malformed_json', async () => {
      expectProblem(await deposit(json, '{"amount":'), 400, 'malformed_json');
      expectProblem(await deposit(json, new Uint8Array([0x7b, 0xff, 0x7d])), 400, 'malformed_json');
    });

    it('should answer another content type, charset or a compressed body with 415', async () => {
      expectProblem(await deposit({ 'Content-Type': 'text/plain' }, '{"amount":1}'), 415, 'unsupported_media_type');
      expectProblem(await deposit({}, new Uint8Array([0x7b, 0x7d])), 415, 'unsupported_media_type');
      const latin = { 'Content-Type': 'application/json; charset=latin1' };
      expectProblem(await deposit(latin, '{"amount":1}'), 415, 'unsupported_media_type');
      expectProblem(await deposit({ ...json, 'Content-Encoding': 'gzip' }, '{}'), 415, 'unsupported_media_type');
      const utf8 = { 'Content-Type': 'application/merge-patch+json; charset=UTF-8' };
      expect((await deposit(utf8, '{"amount":1}')).status).to.equal(201);
    });

    it('should answer a body past the limit with 413, streamed or not', async () => {
      expectProblem(
        await deposit(json, JSON.stringify({ amount: 1, note: 'x'.repeat(200) }), 100),
        413,
        'payload_too_large',
      );
      const stream = new ReadableStream<Uint8Array>({
        pull(controller) {
          controller.enqueue(new TextEncoder().encode(' '.repeat(64)));
        },
      });
      const streamed = await bankApp({ bodyLimit: 1024 }).api.fetch(
        new Request('http://bank.test/accounts/a-1/deposits', {
          method: 'POST',
          headers: { ...clerk, ...json },
          body: stream,
          duplex: 'half',
        } as RequestInit),
      );
      expectProblem(await read(streamed), 413, 'payload_too_large');
    });
  });

  describe('unknown paths and methods', () => {
    it('should answer an unknown path with 404 route_not_found and another method with 405 and Allow', async () => {
      const { api } = bankApp();
      expectProblem(await read(await api.fetch(request('GET', '/nowhere'))), 404, 'route_not_found');
      expectProblem(await read(await api.fetch(request('GET', '/accounts/a-1/deposits/x'))), 404, 'route_not_found');
      const wrong = await read(await api.fetch(request('PUT', '/accounts/a-1', clerk)));
      expectProblem(wrong, 405, 'method_not_allowed');
      expect(wrong.headers.get('allow')).to.equal('GET, DELETE');
    });

    it('should match literal segments regardless of case with caseSensitive: false, and only then', async () => {
      const { api, bank } = bankApp({ caseSensitive: false });
      bank.balances.set('a-1', 7);
      expect((await read(await api.fetch(request('GET', '/ACCOUNTS/a-1')))).status).to.equal(200);
      const strict = bankApp();
      expectProblem(await read(await strict.api.fetch(request('GET', '/ACCOUNTS/a-1'))), 404, 'route_not_found');
    });

    it('should answer another method 404 with methodNotAllowed: false', async () => {
      const { api } = bankApp({ methodNotAllowed: false });
      expectProblem(await read(await api.fetch(request('PUT', '/accounts/a-1', clerk))), 404, 'route_not_found');
    });

    it('should answer HEAD on a GET route with its status and no body', async () => {
      const { api, bank } = bankApp();
      bank.balances.set('a-1', 1);
      const head = await api.fetch(request('HEAD', '/accounts/a-1'));
      expect(head.status).to.equal(200);
      expect(await head.text()).to.equal('');
    });
  });

  it('should serve Node’s http through a tiny bridge (chunked bodies included)', async () => {
    const { api } = bankApp();
    const server = createServer((req, res) => void bridge(api.fetch, req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const body = Readable.from(['{"amount":', '3}']);
      const reply = await fetch(`${base}/accounts/a-1/deposits`, {
        method: 'POST',
        headers: { ...clerk, ...json },
        body: Readable.toWeb(body) as ReadableStream,
        duplex: 'half',
      } as RequestInit);
      expect(reply.status).to.equal(201);
      expect(await reply.json()).to.deep.equal({ accountId: 'a-1', balance: 3, note: null });
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

/** The Node bridge a README shows: a Node request as a Fetch Request, the Fetch Response written back. */
async function bridge(handle: (request: Request) => Promise<Response>, req: IncomingMessage, res: ServerResponse) {
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headersDistinct))
    for (const one of value ?? []) headers.append(name, one);
  const hasBody = req.method !== 'GET' && req.method !== 'HEAD';
  const response = await handle(
    new Request(`http://${req.headers.host ?? 'localhost'}${req.url ?? '/'}`, {
      method: req.method ?? 'GET',
      headers,
      ...(hasBody ? { body: Readable.toWeb(req) as ReadableStream, duplex: 'half' } : {}),
    } as RequestInit),
  );
  res.writeHead(response.status, Object.fromEntries(response.headers));
  res.end(Buffer.from(await response.arrayBuffer()));
}

describe('routes() as Express middleware', () => {
  async function listen(app: express.Express) {
    const server = createServer(app);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    return {
      call: async (method: string, path: string, headers: Record<string, string> = {}, body?: string | Readable) => {
        const sent = typeof body === 'string' ? { body } : body ? { body: Readable.toWeb(body), duplex: 'half' } : {};
        return read(await fetch(`${base}${path}`, { method, headers, ...sent } as RequestInit));
      },
      close: async () => {
        const closed = new Promise((resolve) => server.close(resolve));
        server.closeAllConnections();
        await closed;
      },
    };
  }

  /** An Express app as the sample builds one: a JSON body parser, the routes, a hand-written route, the errors. */
  function expressApp(bodyParser: boolean) {
    const errors: unknown[] = [];
    const { api, bank } = bankApp();
    const app = express();
    if (bodyParser) app.use(express.json({ limit: '1kb' }));
    app.use(api.express);
    app.get('/health', (_req, res) => void res.json({ ok: true }));
    app.use((req, res) => void res.status(404).json({ kind: 'route_not_found', path: req.path }));
    app.use((error: unknown, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
      errors.push(error);
      const reply = problemOfError(error);
      res.status(reply.status).set(reply.headers).send(JSON.stringify(reply.body));
    });
    return { app, bank, errors };
  }

  for (const bodyParser of [true, false]) {
    describe(bodyParser ? 'after express.json()' : 'without a body parser', () => {
      it('should answer a success with the route status and a replay with Idempotent-Replayed', async () => {
        const { app, bank } = expressApp(bodyParser);
        const server = await listen(app);
        try {
          const headers = { ...clerk, ...json, 'Idempotency-Key': 'k-1' };
          const first = await server.call('POST', '/accounts/a-1/deposits?note=hi', headers, '{"amount":2}');
          expect(first.status).to.equal(201);
          expect(first.body).to.deep.equal({ accountId: 'a-1', balance: 2, note: 'hi' });
          const again = await server.call('POST', '/accounts/a-1/deposits?note=hi', headers, '{"amount":2}');
          expect(again.headers.get('idempotent-replayed')).to.equal('true');
          expect(again.body).to.deep.equal(first.body);
          expect(bank.runs).to.equal(1);
          expect((await server.call('GET', '/accounts/a-1')).body).to.include({ balance: 2 });
        } finally {
          await server.close();
        }
      });

      it('should answer failures as problem+json, bad bodies with 400/413, exceptions through next()', async () => {
        const { app, errors } = expressApp(bodyParser);
        const server = await listen(app);
        try {
          expectProblem(await server.call('POST', '/misbehave/conflict', clerk), 409, 'conflict');
          expectProblem(
            await server.call('POST', '/accounts/a-1/deposits', { ...clerk, ...json }, '{"amount":'),
            400,
            'malformed_json',
          );
          const big = JSON.stringify({ amount: 1, note: 'x'.repeat(200 * 1024) });
          expectProblem(
            await server.call('POST', '/accounts/a-1/deposits', { ...clerk, ...json }, big),
            413,
            'payload_too_large',
          );
          expectProblem(await server.call('POST', '/explode', { ...clerk, ...json }, '{}'), 500, 'internal');
          expect(errors.map((error) => (error as Error).message)).to.include('disk on fire');
        } finally {
          await server.close();
        }
      });
    });
  }

  it('should call next() for a path it has no route for (hand-written routes mix in), 405 for a method', async () => {
    const { app } = expressApp(true);
    const server = await listen(app);
    try {
      expect(await server.call('GET', '/health')).to.deep.include({ status: 200, body: { ok: true } });
      expect((await server.call('GET', '/nowhere')).body).to.deep.equal({ kind: 'route_not_found', path: '/nowhere' });
      const wrong = await server.call('PATCH', '/accounts/a-1', clerk);
      expectProblem(wrong, 405, 'method_not_allowed');
      expect(wrong.headers.get('allow')).to.equal('GET, DELETE');
    } finally {
      await server.close();
    }
  });

  it('should leave another method to the next handler with methodNotAllowed: false', async () => {
    const { api } = bankApp({ methodNotAllowed: false });
    const app = express();
    app.use(express.json(), api.express, (_req, res) => void res.status(299).send('"next"'));
    const server = await listen(app);
    try {
      expect((await server.call('PUT', '/accounts/a-1', clerk)).status).to.equal(299);
    } finally {
      await server.close();
    }
  });

  it('should take a body the parser skipped as absent with parsedBodiesOnly: true (validation judges it)', async () => {
    const { api, bank } = bankApp({ parsedBodiesOnly: true });
    const app = express();
    app.use(express.json(), api.express);
    const server = await listen(app);
    try {
      const reply = await server.call(
        'POST',
        '/accounts/a-1/deposits',
        { ...clerk, 'Content-Type': 'text/plain' },
        '{"amount":5}',
      );
      expectProblem(reply, 422, 'validation');
      expect(bank.runs).to.equal(0);
    } finally {
      await server.close();
    }
  });

  it('should stop reading a streamed body past the limit and answer 413 (no body parser)', async () => {
    const { api } = bankApp({ bodyLimit: 1000 });
    const app = express();
    app.use(api.express);
    const server = await listen(app);
    try {
      let chunks = 0;
      const body = new Readable({
        read() {
          this.push(chunks++ < 100 ? ' '.repeat(100) : null);
        },
      });
      const reply = await server.call('POST', '/accounts/a-1/deposits', { ...clerk, ...json }, body);
      expectProblem(reply, 413, 'payload_too_large');
      expectProblem(await server.call('GET', '/accounts/a-1'), 404, 'not_found'); // the server still answers
    } finally {
      await server.close();
    }
  });

  it('should read paths relative to where it is mounted', async () => {
    const { api, bank } = bankApp();
    bank.balances.set('a-1', 4);
    const app = express();
    app.use('/v1', api.express);
    const server = await listen(app);
    try {
      expect((await server.call('GET', '/v1/accounts/a-1')).body).to.include({ balance: 4 });
    } finally {
      await server.close();
    }
  });

  it('should type-check as Express middleware and take Express’s request and response', () => {
    expectTypeOf<express.Request>().toExtend<ExpressLikeRequest>();
    expectTypeOf<express.Response>().toExtend<ExpressLikeResponse>();
  });
});

describe('route declarations', () => {
  const mediator = {} as Mediator;

  it('should refuse a route declared twice, a path that is not one, and a success status that is not 2xx', () => {
    expect(() => routes(mediator, [get('/a/:accountId', GetAccount), get('/a/:other', GetAccount as never)])).to.throw(
      /GET \/a\/:other is declared twice/,
    );
    expect(() => get('a/:accountId', GetAccount)).to.throw(/start the path with '\/'/);
    expect(() => get('/a//:accountId', GetAccount)).to.throw(/neither a literal segment nor a :param/);
    expect(() => post('/a/:accountId', CloseAccount, { status: 400 })).to.throw(/200–299, not 400/);
    expect(() => get('/a/:accountId', GetAccount, { query: ['accountId'] })).to.throw(/'accountId' is taken twice/);
  });

  it('should record the method, params, query, body, status and codes', () => {
    const route: Route<typeof Deposit> = post('/accounts/:accountId/deposits', Deposit, {
      status: 202,
      query: ['note'],
      codes: ['limit_exceeded', 'account_frozen'],
    });
    expect(route).to.deep.include({
      method: 'POST',
      params: ['accountId'],
      query: ['note'],
      body: true,
      status: 202,
      codes: ['limit_exceeded', 'account_frozen'],
    });
    expect(get('/accounts/:accountId', GetAccount).body).to.equal(false);
  });

  it('should check params, query and domain codes against the request at compile time', () => {
    class Rename extends Command(v.object({ productId: v.string(), name: v.string() }))<void, 'taken'> {}
    class Find extends Query(v.object({ productId: v.string() }))<{ name: string }> {}
    const checks = () => [
      post('/products/:productId', Rename, { codes: ['taken'] }),
      get('/products/:productId', Find),
      // @ts-expect-error a path parameter that is not a field of the request
      get('/products/:sku', Find),
      // @ts-expect-error a wrong domain code
      post('/products/:productId', Rename, { codes: ['taken', 'nope'] }),
      // @ts-expect-error a domain code the request declares is missing from codes
      post('/products/:productId', Rename, { codes: [] }),
      // @ts-expect-error codes are required when the request declares domain codes
      post('/products/:productId', Rename),
      // @ts-expect-error a request without domain codes takes none
      get('/products/:productId', Find, { codes: ['taken'] }),
      // @ts-expect-error a query parameter that is not a field of the request
      get('/products/:productId', Find, { query: ['sku'] }),
      // @ts-expect-error a response schema whose output is not the request's result
      get('/products/:productId', Find, { response: v.object({ title: v.string() }) }),
    ];
    expect(checks).to.be.a('function');
    expectTypeOf(get('/products/:productId', Find)).toEqualTypeOf<Route<typeof Find>>();
    void actor;
  });
});
