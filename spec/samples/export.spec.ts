// GET /audit/export: every sealed audit record as NDJSON, oldest first, streamed through mediator.stream() — on
// memory, PGlite and Postgres; on Postgres 100,000 records with the service's heap bounded, and a client that
// disconnects halfway gives the cursor's connection back.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { request, type IncomingMessage } from 'node:http';
import { fileURLToPath } from 'node:url';
import { Container } from 'inversify';
import knex, { type Knex } from 'knex';
import { KNEX, knexModule, migrate } from '../../adapters/knex/index.js';
import { memoryBusModule } from '../../adapters/memory/index.js';
import { TOKENS } from '../../lib/core/index.js';
import type { AuditStore } from '../../lib/audit/index.js';
import type { RunningRelay } from '../../lib/messaging/index.js';
import { createApp, createMemoryContainer, type SampleApp } from '../../samples/app.js';
import { AUDIT_EXPORT, type AuditExport } from '../../samples/audit/index.js';
import { backendFromEnv, type Backend } from '../../samples/backend.js';
import { createSampleTables, sqlRepositories } from '../../samples/sql.js';
import { postgres, sharedPglite } from '../support/db.js';
import { expect } from '../support/helpers.js';
import { serve } from '../support/serve.js';

const MB = 1024 * 1024;
const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
const manager = { 'X-Actor': 'auditor-1', 'X-Roles': 'manager' };

/** A child's output (stdout and stderr): `next(pattern)` resolves on the first match after the text read so far. */
function lines(child: ChildProcess): { text(): string; next(pattern: RegExp): Promise<RegExpMatchArray> } {
  let text = '';
  let waiting: (() => void) | undefined;
  for (const stream of [child.stdout!, child.stderr!])
    stream.setEncoding('utf8').on('data', (chunk: string) => {
      text += chunk;
      waiting?.();
    });
  return {
    text: () => text,
    next(pattern) {
      const from = text.length;
      return new Promise((resolve, reject) => {
        const exited = () => reject(new Error(`the service exited before printing ${pattern}:\n${text}`));
        waiting = () => {
          const match = text.slice(from).match(pattern);
          if (!match) return;
          waiting = undefined;
          child.off('exit', exited);
          resolve(match);
        };
        child.once('exit', exited);
        waiting();
      });
    },
  };
}

/** A GET with node:http: resolves to the response, its body unread. */
function get(url: string, headers: Record<string, string>): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => request(url, { headers }, resolve).on('error', reject).end());
}

/**
 * Reads an NDJSON body line by line without keeping it: calls `each` with every parsed line, and stops (aborting the
 * request) once `each` returns false. Resolves to the number of lines read.
 */
async function readLines(response: Response, each: (line: any) => boolean | void, abort?: AbortController) {
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  let rest = '';
  let count = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    const parts = (rest + value).split('\n');
    rest = parts.pop()!;
    for (const part of parts) {
      count++;
      if (each(JSON.parse(part)) === false) {
        abort?.abort();
        await reader.cancel().catch(() => undefined);
        return count;
      }
    }
  }
  expect(rest, 'the body ends with a newline').to.equal('');
  return count;
}

/** Sends a few requests as `actor`, so that the log has records of it: ok, forbidden, and a domain failure. */
async function someRecords(url: string, actor: string): Promise<void> {
  const post = (path: string, roles: string, body: object) =>
    fetch(`${url}${path}`, {
      method: 'POST',
      headers: { 'X-Actor': actor, 'X-Roles': roles, 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    });
  const productId = `sku-${randomUUID().slice(0, 8)}`;
  expect((await post('/inventory/receipts', 'manager', { productId, binId: 'A', qty: 2 })).status).to.equal(200);
  expect((await post('/inventory/receipts', 'clerk', { productId, binId: 'A', qty: 2 })).status).to.equal(403);
  const move = { productId, fromBinId: 'A', toBinId: 'B', qty: 5, reason: 'x' };
  expect((await post('/inventory/moves', 'clerk', move)).status).to.equal(409);
}

/** The records of the export that `actor` made, as the lines show them. */
async function exportedOf(url: string, actor: string): Promise<Array<Record<string, unknown>>> {
  const response = await fetch(`${url}/audit/export`, { headers: manager });
  expect(response.status).to.equal(200);
  expect(response.headers.get('content-type')).to.equal('application/x-ndjson; charset=utf-8');
  const mine: Array<Record<string, unknown>> = [];
  let last = '';
  await readLines(response, (line) => {
    if (line.actor !== actor) return;
    // In commit order: for one client's sends, one after another, their time order (a concurrent send that began
    // earlier, a slow payment step, may commit later than others).
    expect(line.at >= last, 'oldest first').to.equal(true);
    last = line.at;
    mine.push(line);
  });
  return mine;
}

function smallSuite(name: string, open: () => Promise<Container>) {
  describe(`on ${name}`, () => {
    let http: { url: string; close(): Promise<void> };
    let sample: SampleApp;
    before(async function () {
      this.timeout(30_000);
      sample = createApp(await open());
      http = await serve(sample.app);
    });
    after(async () => {
      await http?.close();
      await sample?.container.get<RunningRelay>(TOKENS.Relay).stop();
    });

    it('should stream every sealed record, oldest first, as the audit log shows them', async () => {
      const actor = `actor-${randomUUID().slice(0, 8)}`;
      await someRecords(http.url, actor);
      const mine = await exportedOf(http.url, actor);
      expect(mine.map(({ type, outcome, code }) => ({ type, outcome, code }))).to.deep.equal([
        { type: 'ReceiveStock', outcome: 'ok', code: undefined },
        { type: 'ReceiveStock', outcome: 'forbidden', code: undefined },
        { type: 'MoveInventory', outcome: 'domain', code: 'insufficient_stock' },
      ]);
      // The same records, fields and values as GET /audit (newest first there).
      const listed = (await (await fetch(`${http.url}/audit?limit=500`)).json()) as Array<{ actor: string }>;
      expect(mine).to.deep.equal(listed.filter((record) => record.actor === actor).reverse());
    });

    it('should answer 403 to anyone but a manager, and audit the opening', async () => {
      for (const headers of [{}, { 'X-Actor': 'clerk-1', 'X-Roles': 'clerk' }]) {
        const reply = await fetch(`${http.url}/audit/export`, { headers });
        expect(reply.status).to.equal(403);
        expect(reply.headers.get('content-type')).to.match(/^application\/problem\+json/);
        expect(await reply.json()).to.deep.include({
          kind: 'forbidden',
          detail: 'Only managers may export the audit log',
        });
      }
      const [newest] = (await (await fetch(`${http.url}/audit?limit=1`)).json()) as unknown[];
      expect(newest).to.deep.include({ type: 'ExportAudit', actor: 'clerk-1', outcome: 'forbidden' });
    });

    it('should answer HEAD with the headers only', async () => {
      const reply = await fetch(`${http.url}/audit/export`, { method: 'HEAD', headers: manager });
      expect(reply.status).to.equal(200);
      expect(reply.headers.get('content-type')).to.equal('application/x-ndjson; charset=utf-8');
      expect(await reply.text()).to.equal('');
    });
  });
}

async function sqlContainer(db: Knex): Promise<Container> {
  await migrate(db);
  await createSampleTables(db);
  const container = new Container();
  container.load(knexModule({ knex: db }), memoryBusModule(), sqlRepositories());
  return container;
}

describe('samples/: GET /audit/export (NDJSON)', () => {
  smallSuite('memory', async () => createMemoryContainer());
  smallSuite('PGlite', async () => sqlContainer(await sharedPglite()));

  it('should answer 500 when reading fails before anything was sent, and cut the connection after', async () => {
    let before = 0; // the records the source yields before it fails
    const failing: AuditExport = {
      async *records() {
        for (let n = 1; n <= before; n++)
          yield { id: `r${n}`, at: new Date(0).toISOString(), actor: null, type: 'T', outcome: 'ok' };
        throw new Error('the disk is on fire');
      },
    };
    const container = createMemoryContainer();
    container.rebind<AuditExport>(AUDIT_EXPORT).toConstantValue(failing);
    const logged: unknown[] = [];
    const http = await serve(createApp(container, { logError: (error) => logged.push(error) }).app);
    try {
      before = 1; // fewer lines than one write: nothing is sent yet
      const early = await fetch(`${http.url}/audit/export`, { headers: manager });
      expect(early.status).to.equal(500);
      expect(await early.json()).to.deep.include({ kind: 'internal' });

      before = 2_000; // several writes, then the failure: the body must not look complete
      const late = await get(`${http.url}/audit/export`, manager);
      expect(late.statusCode).to.equal(200);
      let received = 0;
      const read = (async () => {
        for await (const chunk of late as AsyncIterable<Buffer>) received += chunk.length;
      })();
      await expect(read).to.be.rejectedWith(/aborted|ECONNRESET/);
      expect(received).to.be.above(0);
      expect(logged.map((error) => (error as Error).message)).to.deep.equal([
        'the disk is on fire',
        'the disk is on fire',
      ]);
    } finally {
      await http.close();
    }
  });

  describe('on Postgres, 100,000 records', function () {
    this.timeout(40_000);
    const RECORDS = 100_000;
    const APPLICATION = 'ucc-samples-export-spec';
    const schema = `sample_export_${randomUUID().replace(/-/g, '').slice(0, 10)}`;
    let backend: Backend | undefined;
    let http: { url: string; close(): Promise<void> };
    let sample: SampleApp;
    let db: Knex;
    const logged: unknown[] = [];
    let service: ChildProcess | undefined;
    const inUse = () => (db.client as { pool: { numUsed(): number } }).pool.numUsed();

    before(async function () {
      if (!(await postgres())) return this.skip();
      backend = await backendFromEnv({
        DATABASE_URL: process.env.DATABASE_URL,
        UCC_SCHEMA: schema,
        PGAPPNAME: APPLICATION,
      });
      sample = createApp(backend.container, { logError: (error) => logged.push(error) });
      db = backend.container.get<Knex>(KNEX);
      // Straight into the library's audit table, committed and not yet chained; then sealed by the store, as the
      // sealer would (the export lists sealed records only, as GET /audit does).
      await db.raw(
        `INSERT INTO ucc_audit (tenant, id, at, actor, type, request_id, outcome, code, payload)
         SELECT 'default', 'bulk-' || g, now() - interval '1 hour' + g * interval '1 ms', 'actor-' || (g % 7),
                'MoveInventory', 'bulk-request-' || g, CASE WHEN g % 10 = 0 THEN 'domain' ELSE 'ok' END,
                CASE WHEN g % 10 = 0 THEN 'insufficient_stock' END, '{}'::jsonb
         FROM generate_series(1, ?) AS g`,
        [RECORDS],
      );
      expect(await backend.container.get<AuditStore>(TOKENS.AuditStore).seal?.()).to.equal(RECORDS);
      http = await serve(sample.app);
    });
    after(async () => {
      service?.kill('SIGKILL'); // a failed test must not leave it running
      await http?.close();
      if (!backend) return; // skipped: no Postgres, so nothing to close and no schema to drop
      await sample.container.get<RunningRelay>(TOKENS.Relay).stop();
      await backend.close();
      const admin = knex({ client: 'pg', connection: process.env.DATABASE_URL!, pool: { min: 0, max: 1 } });
      await admin.raw('DROP SCHEMA IF EXISTS ?? CASCADE', [schema]);
      await admin.destroy();
    });

    it('should stream all of them, oldest first, holding one batch at a time', async () => {
      const gc = (globalThis as { gc?: () => void }).gc;
      expect(gc, 'mocha runs with --expose-gc').to.be.a('function');
      gc!();
      const idle = process.memoryUsage().heapUsed;
      let retained = 0; // the most the heap held after a full GC during the stream
      let lines = 0;
      let checked = 0;
      // node:http rather than fetch, counting the lines on the bytes: the client shares the heap, so it keeps
      // nothing. Every 10,000th line is parsed: oldest first, none missing.
      const response = await get(`${http.url}/audit/export`, manager);
      expect(response.statusCode).to.equal(200);
      expect(response.headers['content-type']).to.equal('application/x-ndjson; charset=utf-8');
      let sampled: Buffer[] | undefined = [];
      for await (const chunk of response as AsyncIterable<Buffer>) {
        for (let at = 0; at < chunk.length;) {
          const end = chunk.indexOf(10, at);
          if (sampled) sampled.push(chunk.subarray(at, end === -1 ? chunk.length : end));
          if (end === -1) break;
          lines++;
          if (sampled) {
            const record = JSON.parse(Buffer.concat(sampled).toString('utf8'));
            expect(record.id, 'oldest first, none missing').to.equal(`bulk-${lines}`);
            expect(record.code).to.equal(lines % 10 === 0 ? 'insufficient_stock' : undefined);
            checked++;
          }
          sampled = lines % 10_000 === 0 ? [] : undefined;
          at = end + 1;
        }
        if (lines % 20_000 < 500) {
          gc!();
          retained = Math.max(retained, process.memoryUsage().heapUsed - idle);
        }
      }
      expect(sampled ?? [], 'the body ends with a newline').to.deep.equal([]);
      expect(lines).to.equal(RECORDS);
      expect(checked).to.equal(RECORDS / 10_000);
      console.log(`      (at most ${(retained / MB).toFixed(1)} MB retained after a full GC during the stream)`);
      expect(retained / MB, 'one batch at a time: buffering the export would hold some 30 MB').to.be.below(16);
      expect(inUse(), 'the cursor gave its connection back').to.equal(0);
    });

    it("should keep npm start's heap under 64 MB above its idle size while it streams them", async () => {
      // The service alone in its process (the client's garbage is not in its heap), with SAMPLE_STATS=1: SIGUSR2
      // reports heapUsed after a full GC, and the peak heapUsed (garbage included) since the previous report.
      service = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', 'samples/server.ts'], {
        cwd: REPO_ROOT,
        env: {
          ...process.env,
          PORT: '0',
          DATABASE_URL: process.env.DATABASE_URL,
          UCC_SCHEMA: schema,
          AMQP_URL: '',
          PGAPPNAME: `${APPLICATION}-process`,
          SAMPLE_STATS: '1',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const output = lines(service);
      const url = `http://127.0.0.1:${(await output.next(/usecasecore sample on http:\/\/localhost:(\d+)/))[1]}`;
      const stats = async () => {
        const reported = output.next(/sample-stats (\{.*\})/);
        service!.kill('SIGUSR2');
        return JSON.parse((await reported)[1]!) as { heapUsed: number; peakHeapUsed: number; afterGc: boolean };
      };
      const idle = await stats();
      expect(idle.afterGc).to.equal(true);
      const started = Date.now();
      const response = await get(`${url}/audit/export`, manager);
      expect(response.statusCode).to.equal(200);
      let count = 0;
      for await (const chunk of response as AsyncIterable<Buffer>)
        for (let at = chunk.indexOf(10); at !== -1; at = chunk.indexOf(10, at + 1)) count++;
      expect(count, 'every record (and the audit record of the export before)').to.be.within(RECORDS, RECORDS + 1);
      const streaming = await stats();
      const above = (streaming.peakHeapUsed - idle.heapUsed) / MB;
      console.log(
        `      (${count} lines in ${Date.now() - started} ms; the service's heap peaked ${above.toFixed(1)} MB ` +
          `above its idle ${(idle.heapUsed / MB).toFixed(1)} MB, garbage included)`,
      );
      expect(above).to.be.below(64);
      const exited = once(service, 'exit');
      service.kill('SIGTERM');
      expect((await exited)[0], output.text()).to.equal(0);
      service = undefined;
    });

    it('should close the cursor and give its connection back when the client disconnects halfway', async () => {
      // Watches the export's source: how many records it produced, and whether it was closed.
      const source = sample.container.get<AuditExport>(AUDIT_EXPORT);
      const records = source.records.bind(source);
      let produced = 0;
      let closed = false;
      source.records = async function* () {
        try {
          for await (const record of records()) {
            produced++;
            yield record;
          }
        } finally {
          closed = true;
        }
      };
      const abort = new AbortController();
      const response = await fetch(`${http.url}/audit/export`, { headers: manager, signal: abort.signal });
      expect(response.status).to.equal(200);
      let read = 0;
      await readLines(response, () => ++read < RECORDS / 2, abort);
      expect(read).to.equal(RECORDS / 2);

      const inTransaction = async () =>
        Number(
          (
            await db.raw(
              `SELECT count(*) AS n FROM pg_stat_activity
               WHERE application_name = ? AND state LIKE 'idle in transaction%'`,
              [APPLICATION],
            )
          ).rows[0].n,
        );
      const deadline = Date.now() + 5_000;
      while ((inUse() > 0 || (await inTransaction()) > 0) && Date.now() < deadline)
        await new Promise((resolve) => setTimeout(resolve, 25));
      expect(inUse(), 'no connection in use').to.equal(0);
      expect(await inTransaction(), 'no session left idle in a transaction').to.equal(0);
      expect(closed, 'the source was closed').to.equal(true);
      expect(produced, 'it stopped early, at most a few socket buffers ahead of the client').to.be.below(
        RECORDS * 0.75,
      );
      expect(logged, 'a client that leaves is no server error').to.deep.equal([]);
      // The service goes on: a new export starts from the first record.
      const again = await fetch(`${http.url}/audit/export`, { headers: manager });
      const first = await readLines(again, (line) => {
        expect(line.id).to.equal('bulk-1');
        return false;
      });
      expect(first).to.equal(1);
    });
  });
});
