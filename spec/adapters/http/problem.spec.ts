// usecasecore/http: every failure kind as problem+json, the success reply, and send options read from headers.
import {
  problem,
  problemOfError,
  readSendOptions,
  toProblem,
  toReply,
  toResponse,
  type HttpReply,
} from '../../../adapters/http/index.js';
import { failure, fail, ok, type Failure } from '../../../lib/core/index.js';
import { expect } from '../../support/helpers.js';

const FAILURES: ReadonlyArray<[Failure, number, Record<string, unknown>]> = [
  [
    { kind: 'validation', message: 'bad', issues: [{ path: 'qty', message: 'too small' }] },
    422,
    { issues: [{ path: 'qty', message: 'too small' }] },
  ],
  [{ kind: 'forbidden', message: 'no' }, 403, {}],
  [{ kind: 'not_found', message: 'none' }, 404, {}],
  [
    { kind: 'invalid_transition', message: 'shipped', from: 'shipped', to: 'cancelled', allowed: ['placed'] },
    409,
    { from: 'shipped', to: 'cancelled', allowed: ['placed'] },
  ],
  [{ kind: 'conflict', message: 'lost' }, 409, {}],
  [{ kind: 'idempotency_mismatch', message: 'other' }, 422, {}],
  [{ kind: 'in_progress', message: 'wait' }, 409, {}],
  [
    { kind: 'domain', message: 'rule', code: 'over_limit', details: { limit: 3 } },
    422,
    { code: 'over_limit', details: { limit: 3 } },
  ],
  [{ kind: 'unavailable', message: 'db down' }, 503, {}],
];

describe('toProblem', () => {
  for (const [given, status, extra] of FAILURES) {
    it(`should answer ${given.kind} with ${status} problem+json carrying its fields`, () => {
      const reply = toProblem(given);
      expect(reply.status).to.equal(status);
      expect(reply.headers).to.deep.equal({ 'Content-Type': 'application/problem+json' });
      expect(reply.body).to.deep.equal({
        type: 'about:blank',
        status,
        title: reply.body.title,
        kind: given.kind,
        detail: given.message,
        ...extra,
      });
      expect(reply.body.title).to.be.a('string').and.not.equal('');
    });
  }

  it('should give a domain code the status the app chose, and 422 to the others', () => {
    const options = { domainStatus: { insufficient_stock: 409 } };
    expect(toProblem(fail('insufficient_stock').failure, options).status).to.equal(409);
    expect(toProblem(fail('other_rule').failure, options).status).to.equal(422);
    expect(toProblem(fail('insufficient_stock').failure).status, 'without options').to.equal(422);
  });

  it('should build HTTP-level problems with their own statuses', () => {
    const statuses = (
      ['unauthenticated', 'malformed_json', 'payload_too_large', 'bad_request', 'route_not_found', 'internal'] as const
    ).map((kind) => problem(kind, 'x').status);
    expect(statuses).to.deep.equal([401, 400, 413, 400, 404, 500]);
  });
});

describe('toReply', () => {
  it('should answer a success with its value, the chosen status and a JSON content type', () => {
    expect(toReply(ok({ id: 'o-1' }), { successStatus: 201 })).to.deep.equal({
      status: 201,
      headers: { 'Content-Type': 'application/json' },
      body: { id: 'o-1' },
    });
    expect(toReply(ok(1)).status).to.equal(200);
  });

  it('should mark replays with Idempotent-Replayed, successes and stored failures alike', () => {
    expect(toReply({ ...ok(1), replayed: true }).headers).to.include({ 'Idempotent-Replayed': 'true' });
    const replayedFailure = { ...fail('insufficient_stock'), replayed: true };
    expect(toReply(replayedFailure).headers).to.deep.equal({
      'Content-Type': 'application/problem+json',
      'Idempotent-Replayed': 'true',
    });
    expect(toReply(ok(1)).headers).not.to.have.property('Idempotent-Replayed');
  });

  it('should map failures through toProblem with the same options', () => {
    const reply = toReply(fail('insufficient_stock'), {
      domainStatus: { insufficient_stock: 409 },
      successStatus: 201,
    });
    expect(reply.status).to.equal(409);
    expect(toReply(failure({ kind: 'forbidden', message: 'no' })).status).to.equal(403);
  });
});

describe('toResponse', () => {
  it('should make a Fetch Response with the status, headers and JSON body', async () => {
    const response = toResponse(toReply({ ...ok({ n: 1 }), replayed: true }, { successStatus: 202 }));
    expect(response.status).to.equal(202);
    expect(response.headers.get('idempotent-replayed')).to.equal('true');
    expect(await response.json()).to.deep.equal({ n: 1 });
  });

  it('should send no body for an undefined value', async () => {
    const reply: HttpReply = { status: 204, headers: {}, body: undefined };
    expect(await toResponse(reply).text()).to.equal('');
  });
});

describe('readSendOptions', () => {
  const actor = (get: (name: string) => string | undefined) => {
    const id = get('X-Actor');
    return id ? { id } : undefined;
  };

  it('should read the key, the actor and the tenant from a Fetch Headers, a getter or a Node header record', () => {
    const expected = { ok: true, options: { idempotencyKey: 'k-1', actor: { id: 'ann' }, tenant: 't-1' } };
    const reader = { actor, tenant: (get: (name: string) => string | undefined) => get('X-Tenant') };
    const fetchHeaders = new Headers({ 'Idempotency-Key': 'k-1', 'X-Actor': 'ann', 'X-Tenant': 't-1' });
    expect(readSendOptions(fetchHeaders, reader)).to.deep.equal(expected);
    expect(readSendOptions((name) => fetchHeaders.get(name), reader)).to.deep.equal(expected);
    expect(readSendOptions({ 'idempotency-key': 'k-1', 'x-actor': 'ann', 'x-tenant': 't-1' }, reader)).to.deep.equal(
      expected,
    );
  });

  it('should leave the key and actor undefined when the headers are absent', () => {
    expect(readSendOptions(new Headers(), { actor })).to.deep.equal({
      ok: true,
      options: { idempotencyKey: undefined, actor: undefined, tenant: undefined },
    });
  });

  const badKeys: ReadonlyArray<[string, Record<string, string | string[]>]> = [
    ['an empty key', { 'idempotency-key': '' }],
    ['a key with a space', { 'idempotency-key': 'a b' }],
    ['a key of 256 characters', { 'idempotency-key': 'k'.repeat(256) }],
    ['a control character', { 'idempotency-key': 'k\u0001' }],
    ['two Idempotency-Key headers', { 'idempotency-key': ['k-1', 'k-2'] }],
  ];
  for (const [name, headers] of badKeys) {
    it(`should answer ${name} with the 422 validation problem the mediator would give`, () => {
      const read = readSendOptions(headers);
      if (read.ok) return expect.fail(`${name} was accepted`);
      expect(read.reply.status).to.equal(422);
      expect(read.reply.body.kind).to.equal('validation');
      expect(read.reply.body.issues).to.deep.equal([
        { path: 'idempotencyKey', message: 'Idempotency key must be 1–255 printable characters without spaces' },
      ]);
    });
  }

  it('should accept a key of exactly 255 printable characters', () => {
    const read = readSendOptions({ 'idempotency-key': '~'.repeat(255) });
    expect(read.ok && read.options.idempotencyKey).to.equal('~'.repeat(255));
  });
});

describe('problemOfError', () => {
  const errors: ReadonlyArray<[string, unknown, number, string]> = [
    [
      'a body that is not JSON',
      { type: 'entity.parse.failed', status: 400, message: 'Unexpected end' },
      400,
      'malformed_json',
    ],
    [
      'a body over the limit',
      { type: 'entity.too.large', status: 413, message: 'too large' },
      413,
      'payload_too_large',
    ],
    [
      'an unsupported charset',
      { type: 'charset.unsupported', status: 415, message: 'latin-9' },
      415,
      'unsupported_media_type',
    ],
    [
      'an unsupported encoding',
      { type: 'encoding.unsupported', status: 415, message: 'br2' },
      415,
      'unsupported_media_type',
    ],
    ['a URL that does not decode', new URIError("Failed to decode param '%E0%A4%A'"), 400, 'bad_request'],
    [
      'a body that does not decompress',
      Object.assign(new Error('incorrect header check'), { code: 'Z_DATA_ERROR' }),
      400,
      'bad_request',
    ],
    ['another client error', { status: 400, type: 'request.aborted', message: 'aborted' }, 400, 'bad_request'],
    ['anything else', new Error('disk on fire'), 500, 'internal'],
  ];
  for (const [name, error, status, kind] of errors) {
    it(`should answer ${name} with ${status} ${kind}`, () => {
      const reply = problemOfError(error);
      expect([reply.status, reply.body.kind]).to.deep.equal([status, kind]);
      expect(reply.headers['Content-Type']).to.equal('application/problem+json');
    });
  }

  it('should reveal nothing of an unexpected error', () => {
    expect(JSON.stringify(problemOfError(new Error('password=hunter2')).body)).not.to.include('hunter2');
  });
});
