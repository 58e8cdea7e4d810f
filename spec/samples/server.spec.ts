// The sample HTTP service's own server over real HTTP: problem+json for bad requests and failures, limits, npm start.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { connect } from 'node:net';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { expect, use } from 'chai';
import chaiAsPromised from 'chai-as-promised';
import { Container } from 'inversify';
import { memoryModule } from '../../adapters/memory/index.js';
import { TOKENS } from '../../lib/core/index.js';
import type { AuditStore } from '../../lib/audit/index.js';
import { createApp, createHttpServer, createMemoryContainer, SERVER_LIMITS } from '../../samples/app.js';
import { INVENTORY_REPOSITORY, ReceiveStock, type InventoryRepository } from '../../samples/inventory/index.js';
import { MemoryOrderRepository, ORDER_REPOSITORY } from '../../samples/orders/index.js';
import { backends, expectProblem, listen, manager, unique, useSampleApp, type CallOptions } from './server-world.js';

use(chaiAsPromised);

const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

for (const [backendName, open] of backends) {
  describe(`samples/ HTTP service on ${backendName}`, () => {
    const { call } = useSampleApp(open);

    describe('HTTP errors', () => {
      it('should answer a __proto__ body with a typed failure and leave Object.prototype alone', async () => {
        const polluting = await call('POST', '/inventory/receipts', {
          ...manager,
          rawBody: '{"__proto__":{"isAdmin":true}}',
        });
        expectProblem(polluting, 422, 'validation');
        expect(polluting.body.issues.map((issue: { path: string }) => issue.path)).to.include.members([
          'productId',
          'binId',
          'qty',
        ]);

        const productId = unique('sku');
        const smuggled = await call('POST', '/inventory/receipts', {
          ...manager,
          rawBody: `{"productId":"${productId}","binId":"A","qty":1,"__proto__":{"isAdmin":true}}`,
        });
        expect(smuggled.status).to.equal(200);
        expect(({} as any).isAdmin).to.equal(undefined);
      });

      it('should answer malformed JSON with 400 and an oversized body with 413, both problem+json', async () => {
        expectProblem(
          await call('POST', '/inventory/receipts', { ...manager, rawBody: '{"productId":' }),
          400,
          'malformed_json',
        );
        const huge = JSON.stringify({ productId: 'p', binId: 'A', qty: 1, padding: 'x'.repeat(64 * 1024) });
        expectProblem(
          await call('POST', '/inventory/receipts', { ...manager, rawBody: huge }),
          413,
          'payload_too_large',
        );
      });

      if (backendName === 'memory')
        it('should answer a repeated X-Actor or X-Roles header with 400, never a joined identity', async () => {
          const server = await listen(createApp(createMemoryContainer()).app);
          try {
            const raw = async (lines: string[]) => {
              const socket = connect(Number(new URL(server.url).port), '127.0.0.1');
              socket.end(
                `POST /inventory/receipts HTTP/1.1\r\nHost: x\r\nConnection: close\r\n${lines.join('\r\n')}\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}`,
              );
              let text = '';
              for await (const chunk of socket) text += String(chunk);
              return text;
            };
            for (const lines of [
              ['X-Actor: alice', 'X-Actor: mallory', 'X-Roles: manager'],
              ['X-Actor: alice', 'X-Roles: clerk', 'X-Roles: manager'],
            ]) {
              const reply = await raw(lines);
              expect(reply).to.match(/^HTTP\/1\.1 400 /);
              expect(reply).to.include('"kind":"bad_request"').and.include('Send one X-');
            }
          } finally {
            await server.close();
          }
        });

      if (backendName === 'memory')
        it('should serve with timeouts and a connection bound chosen on purpose', () => {
          const server = createHttpServer(createApp(createMemoryContainer()).app);
          expect({
            headersTimeout: server.headersTimeout,
            requestTimeout: server.requestTimeout,
            keepAliveTimeout: server.keepAliveTimeout,
            maxConnections: server.maxConnections,
          }).to.deep.equal(SERVER_LIMITS);
        });

      if (backendName === 'memory')
        it('should answer client mistakes the framework catches with 4xx problem+json, never 500', async () => {
          const logged: unknown[] = [];
          const { app } = createApp(createMemoryContainer(), { logError: (e) => logged.push(e) });
          const server = await listen(app);
          try {
            const at = (path: string, options: CallOptions = {}) => call('POST', path, options, server.url);
            expectProblem(await call('GET', '/inventory/%E0%A4%A', {}, server.url), 400, 'bad_request');
            const charset = { 'Content-Type': 'application/json; charset=latin-9' };
            expectProblem(
              await at('/inventory/receipts', { ...manager, rawBody: '{}', headers: charset }),
              415,
              'unsupported_media_type',
            );
            const encoding = { 'Content-Encoding': 'br2' };
            expectProblem(
              await at('/inventory/receipts', { ...manager, rawBody: '{}', headers: encoding }),
              415,
              'unsupported_media_type',
            );
            const gzip = { 'Content-Encoding': 'gzip' };
            expectProblem(
              await at('/inventory/receipts', { ...manager, rawBody: 'not gzip', headers: gzip }),
              400,
              'bad_request',
            );
            expect(logged, 'a client mistake is not logged as a server error').to.deep.equal([]);
          } finally {
            await server.close();
          }
        });

      // Backend-independent checks run once, in the memory suite.
      if (backendName === 'memory')
        it('should answer 500 problem+json revealing nothing when a repository throws, and audit the error', async () => {
          const container = new Container();
          container.load(memoryModule());
          const broken: InventoryRepository = {
            lockBins: () => Promise.reject(new Error('disk on fire')),
            setQuantity: () => Promise.reject(new Error('disk on fire')),
            bins: () => Promise.reject(new Error('disk on fire')),
          };
          container.bind(INVENTORY_REPOSITORY).toConstantValue(broken);
          container.bind(ORDER_REPOSITORY).to(MemoryOrderRepository).inSingletonScope();
          const logged: unknown[] = [];
          const failing = createApp(container, { logError: (error) => logged.push(error) });
          const server = await listen(failing.app);
          try {
            const reply = await call(
              'POST',
              '/inventory/receipts',
              { ...manager, body: { productId: 'p', binId: 'A', qty: 1 } },
              server.url,
            );
            expectProblem(reply, 500, 'internal');
            expect(JSON.stringify(reply.body)).not.to.include('disk on fire');
            expect(logged).to.have.length(1);
            const [newest] = await container.get<AuditStore>(TOKENS.AuditStore).list({ limit: 1, order: 'desc' });
            expect(newest).to.include({ type: 'ReceiveStock', outcome: 'error' });
            await expect(
              failing.mediator.send(ReceiveStock.from({ productId: 'p', binId: 'A', qty: 1 }), {
                actor: { id: 'm', roles: ['manager'] },
              }),
            ).to.be.rejectedWith('disk on fire');
          } finally {
            await server.close();
          }
        });
    });

    if (backendName === 'memory')
      describe('npm start (samples/server.ts)', () => {
        let child: ChildProcess | undefined;
        let groupRunning = false;

        afterEach(() => {
          if (child && groupRunning) process.kill(-child.pid!, 'SIGKILL'); // a failed test must not leave the server up
        });

        it('should print its URL and adapters, serve requests and shut down on SIGTERM', async function () {
          this.timeout(30_000);
          const port = await freePort();
          child = spawn('npx', ['tsx', 'samples/server.ts'], {
            cwd: REPO_ROOT,
            env: {
              ...process.env,
              ...{ PORT: String(port), DATABASE_URL: '', AMQP_URL: '', PGLITE_DIR: '' },
              ...{ RETENTION_JOBS_MS: '1', RETENTION_EVERY_MS: '100' }, // settled jobs purged at once
            },
            detached: true,
            stdio: ['ignore', 'pipe', 'pipe'],
          });
          groupRunning = true;
          const closed = once(child, 'close').then(() => {
            groupRunning = false;
          }); // every process let go of stdout
          const output = captureStdout(child);

          const banner = await output.waitFor(/usecasecore sample on (http:\/\/localhost:\d+) — (.*)/);
          expect(banner[1]).to.equal(`http://localhost:${port}`);
          expect(banner[2]).to.equal(
            'database: PGlite (embedded, in memory — set PGLITE_DIR to keep data), bus: memory (in-process)',
          );

          const reply = await call('GET', '/inventory/sku-1', {}, banner[1]);
          expect(reply).to.deep.include({ status: 200, body: { productId: 'sku-1', bins: {} } });

          // A move below the low-stock threshold runs a LowStockAlert job; retention then purges its settled record.
          const at = (path: string, options: CallOptions = {}) =>
            call(options.body ? 'POST' : 'GET', path, options, banner[1]);
          const body = { productId: 'sku-1', binId: 'A', qty: 6 };
          expect((await at('/inventory/receipts', { ...manager, body })).status).to.equal(200);
          const move = { productId: 'sku-1', fromBinId: 'A', toBinId: 'B', qty: 3, reason: 'below the threshold' };
          expect((await at('/inventory/moves', { actor: 'clerk-1', roles: 'clerk', body: move })).status).to.equal(200);
          const alert = await eventually(
            'the alert of the job',
            async () => (await at('/inventory/sku-1/alerts')).body.alerts[0],
          );
          await eventually(
            'the settled job purged by retention',
            async () => (await at(`/jobs/${alert.jobId}`)).status === 404,
          );

          process.kill(-child.pid!, 'SIGTERM'); // the whole group: npx does not forward signals to tsx
          await closed;
          expect(output.text()).to.include('SIGTERM received, shutting down');
        });
      });
  });
}

/** Polls `probe` (every 50 ms, at most 10 s) until it gives something truthy: the server's timers run on their own. */
async function eventually<T>(what: string, probe: () => Promise<T>): Promise<NonNullable<T>> {
  for (const deadline = Date.now() + 10_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 50))) {
    const found = await probe();
    if (found) return found;
  }
  throw new Error(`timed out after 10 s waiting for ${what}`);
}

/** A port nothing listens on right now. */
async function freePort(): Promise<number> {
  const probe = createServer().listen(0);
  await once(probe, 'listening');
  const { port } = probe.address() as AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

/** Collects a child's stdout; `waitFor` resolves on the first match, or rejects if the child's output ends first. */
function captureStdout(child: ChildProcess): { text(): string; waitFor(pattern: RegExp): Promise<RegExpMatchArray> } {
  let text = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    text += chunk;
  });
  child.stderr!.resume();
  return {
    text: () => text,
    waitFor(pattern) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const match = text.match(pattern);
          if (!match) return;
          child.stdout!.off('data', check);
          child.off('close', early);
          resolve(match);
        };
        const early = () => reject(new Error(`server exited before printing ${pattern}; stdout: ${text}`));
        child.stdout!.on('data', check);
        child.once('close', early);
        check();
      });
    },
  };
}
