// What the sample HTTP service specs share: the backends they run on, and the service on one of them over HTTP.
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import { Container } from 'inversify';
import knex, { type Knex } from 'knex';
import { knexModule, migrate } from '../../adapters/knex/index.js';
import { MemoryBus, memoryBusModule } from '../../adapters/memory/index.js';
import { TOKENS } from '../../lib/core/index.js';
import type { Relay, RunningRelay } from '../../lib/messaging/index.js';
import { createApp, createMemoryContainer, type SampleApp } from '../../samples/app.js';
import { createSampleTables, sqlRepositories } from '../../samples/sql.js';
import { postgres, sharedPglite } from '../support/db.js';

export interface Reply {
  status: number;
  headers: Headers;
  body: any;
}
export interface CallOptions {
  actor?: string;
  roles?: string;
  body?: unknown;
  rawBody?: string;
  idempotencyKey?: string;
  headers?: Record<string, string>;
}

/** Listens on a free port; resolves to its base URL and a close function. */
export async function listen(app: SampleApp['app']): Promise<{ url: string; close(): Promise<void> }> {
  const server: Server = createServer(app).listen(0);
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** A fresh id, so every test works on its own products, bins and actors. */
export function unique(prefix: string): string {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}

/** Sample containers per backend: the HTTP contract must hold on each. */
export const backends: Array<[name: string, open: () => Promise<Backend | undefined>]> = [
  ['memory', async () => ({ container: createMemoryContainer(), close: async () => undefined })],
  ['PGlite', async () => sqlBackend(await sharedPglite())],
  [
    'Postgres',
    async () => {
      const db = await postgres();
      if (!db) return undefined;
      // A schema of its own, found through the search path, so runs never see each other's rows.
      const schema = `sample_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
      await db.raw('CREATE SCHEMA ??', [schema]);
      const scoped = knex({ ...db.client.config, searchPath: [schema] });
      const backend = await sqlBackend(scoped);
      return {
        container: backend.container,
        close: async () => {
          await scoped.destroy();
          await db.raw('DROP SCHEMA ?? CASCADE', [schema]);
        },
      };
    },
  ],
];

export interface Backend {
  container: Container;
  close(): Promise<void>;
}

async function sqlBackend(db: Knex): Promise<Backend> {
  await migrate(db);
  await createSampleTables(db);
  const container = new Container();
  container.load(knexModule({ knex: db }), memoryBusModule(), sqlRepositories());
  return { container, close: async () => undefined };
}

/** The identities most cases act as. */
export const manager = { actor: 'manager-1', roles: 'manager' };
export const clerk = { actor: 'clerk-1', roles: 'clerk' };

/** Asserts a problem+json reply of this status and kind. */
export function expectProblem(reply: Reply, status: number, kind: string): void {
  expect(reply.status, JSON.stringify(reply.body)).to.equal(status);
  expect(reply.headers.get('content-type')).to.match(/^application\/problem\+json/);
  expect(reply.body).to.include({ status, kind });
  expect(reply.body.title).to.be.a('string').and.not.empty;
}

/**
 * For a backend's describe: the service on it, listening before the cases and closed after them (skipped when the
 * backend is not there), and the calls the cases make to it.
 */
export function useSampleApp(open: () => Promise<Backend | undefined>) {
  let sample: SampleApp;
  let baseUrl: string;
  let stop: (() => Promise<void>) | undefined;
  let backend: Backend | undefined;

  before(async function () {
    this.timeout(30_000);
    backend = await open();
    if (!backend) return this.skip();
    sample = createApp(backend.container);
    ({ url: baseUrl, close: stop } = await listen(sample.app));
  });

  after(async () => {
    await stop?.();
    await sample?.container.get<RunningRelay>(TOKENS.Relay).stop(); // before its database closes
    await backend?.close();
  });

  async function call(method: string, path: string, options: CallOptions = {}, base = baseUrl): Promise<Reply> {
    const headers: Record<string, string> = {};
    if (options.actor !== undefined) headers['X-Actor'] = options.actor;
    if (options.roles !== undefined) headers['X-Roles'] = options.roles;
    if (options.idempotencyKey !== undefined) headers['Idempotency-Key'] = options.idempotencyKey;
    const body = options.rawBody ?? (options.body === undefined ? undefined : JSON.stringify(options.body));
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    Object.assign(headers, options.headers);
    const response = await fetch(`${base}${path}`, { method, headers, ...(body === undefined ? {} : { body }) });
    const text = await response.text();
    return { status: response.status, headers: response.headers, body: text === '' ? undefined : JSON.parse(text) };
  }

  async function receive(productId: string, binId: string, qty: number): Promise<void> {
    const reply = await call('POST', '/inventory/receipts', { ...manager, body: { productId, binId, qty } });
    expect(reply.status, JSON.stringify(reply.body)).to.equal(200);
  }

  async function binsOf(productId: string): Promise<Record<string, number>> {
    const reply = await call('GET', `/inventory/${productId}`);
    expect(reply.status).to.equal(200);
    return reply.body.bins;
  }

  async function placeOrder(owner: string, body: { productId: string; binId: string; qty: number }): Promise<string> {
    const reply = await call('POST', '/orders', { actor: owner, body });
    expect(reply.status, JSON.stringify(reply.body)).to.equal(201);
    return reply.body.orderId;
  }

  async function newestAuditId(): Promise<string | undefined> {
    return (await call('GET', '/audit?limit=1')).body[0]?.id;
  }

  async function publishedFor(aggregateId: string) {
    await sample.container.get<Relay>(TOKENS.Relay).drain();
    await sample.container.get(MemoryBus).idle();
    return sample.container.get(MemoryBus).published.filter((message) => message.aggregateId === aggregateId);
  }

  return { call, receive, binsOf, placeOrder, newestAuditId, publishedFor };
}
