// The package as users get it: `npm pack`, installed into an empty project, used from plain Node 24 and 22.
import { execFile } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { expect } from '../support/helpers.js';
import { nodeBinary, NODE_MAJORS } from './nodes.js';

const run = promisify(execFile);
const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const fixture = join(repo, 'spec', 'package', 'fixture');

interface Packed {
  filename: string;
  files: Array<{ path: string }>;
  entryCount: number;
  size: number;
}

describe('the packed package in an empty project', function () {
  this.timeout(300_000);
  const scratch = mkdtempSync(join(tmpdir(), 'ucc-consumer-'));
  const project = join(scratch, 'project');
  let packed: Packed;

  before(async () => {
    await run('npm', ['run', 'build'], { cwd: repo });
    const { stdout } = await run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', scratch], {
      cwd: repo,
    });
    packed = (JSON.parse(stdout) as Packed[])[0]!;
    cpSync(fixture, project, { recursive: true });
    const typesNode = JSON.parse(readFileSync(join(repo, 'node_modules/@types/node/package.json'), 'utf8')).version;
    await run(
      'npm',
      [
        'install',
        '--no-audit',
        '--no-fund',
        '--prefer-offline',
        join(scratch, packed.filename),
        `@types/node@${typesNode}`,
      ],
      { cwd: project, timeout: 240_000 },
    );
  });
  after(() => rmSync(scratch, { recursive: true, force: true }));

  it('should ship only dist/, README, CHANGELOG, LICENSE and package.json, and no TypeScript sources', () => {
    const outside = packed.files
      .map((f) => f.path)
      .filter(
        (path) => !path.startsWith('dist/') && !['README.md', 'CHANGELOG.md', 'LICENSE', 'package.json'].includes(path),
      );
    expect(outside).to.deep.equal([]);
    expect(packed.files.filter((f) => /(?<!\.d)\.ts$/.test(f.path)).map((f) => f.path)).to.deep.equal([]);
    expect(packed.files.map((f) => f.path)).to.include.members([
      'LICENSE',
      'CHANGELOG.md',
      'dist/adapters/cli/main.js',
    ]);
  });

  it("should compile the README tour with tsc (nodenext, strict) against the package's own types", async () => {
    const tsc = join(repo, 'node_modules', 'typescript', 'bin', 'tsc');
    const compiled = await run(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: project }).catch(
      (error) => error,
    );
    expect(compiled.stdout ?? '', 'tsc reported errors').to.equal('');
    expect(compiled.code ?? 0).to.equal(0);
  });

  for (const major of NODE_MAJORS) {
    describe(`on Node ${major}`, () => {
      let node: string;
      before(() => {
        node = nodeBinary(major);
      });

      it('should import every public subpath from plain JavaScript', async () => {
        const { stdout } = await run(node, ['imports.mjs'], { cwd: project });
        const { node: version, exported } = JSON.parse(stdout) as { node: string; exported: Record<string, string[]> };
        expect(version).to.match(new RegExp(`^v${major}\\.`));
        expect(exported['usecasecore']).to.include.members(['createMediator', 'Command', 'ok', 'fail', 'UseCaseError']);
        expect(exported['usecasecore/middleware']).to.include.members([
          'recommendedStack',
          'validation',
          'idempotency',
        ]);
        expect(exported['usecasecore/messaging']).to.include.members([
          'createRelay',
          'consume',
          'subscribe',
          'queueNames',
        ]);
        expect(exported['usecasecore/jobs']).to.include.members(['work', 'GetJob', 'CancelJob', 'jobHandlers']);
        expect(exported['usecasecore/audit']).to.include.members(['auditSealer', 'verifyAuditChain', 'chainHash']);
        expect(exported['usecasecore/ops']).to.include('retention');
        expect(exported['usecasecore/adapters/memory']).to.include('memoryModule');
        expect(exported['usecasecore/adapters/knex']).to.include.members(['knexModule', 'migrate', 'pgliteKnex']);
        expect(exported['usecasecore/adapters/amqp']).to.include('amqpModule');
        expect(exported['usecasecore/testing']).to.include('settled');
        expect(exported['usecasecore/testing']!.filter((name) => /Contract$/.test(name))).to.have.length.of.at.least(6);
        expect(exported['usecasecore/http']).to.include.members(['toProblem', 'toReply', 'readSendOptions']);
      });

      it('should run the compiled tour: inferred types, a success, a replay and every failure it provokes', async () => {
        const { stdout } = await run(node, [join('out', 'tour.js')], { cwd: project });
        const tour = JSON.parse(stdout);
        expect(tour.inferred).to.equal(true);
        expect(tour.moved).to.deep.equal({ ok: true, value: { sourceQtyAfter: 6, destQtyAfter: 4 } });
        expect(tour.replayed).to.equal(true);
        expect(tour.tooMany).to.deep.include({ kind: 'domain', code: 'insufficient_stock', details: { available: 6 } });
        expect(tour.tooManyStatus).to.equal(409);
        expect(tour.denied).to.equal('forbidden');
        expect(tour.invalid).to.have.members(['fromBinId', 'qty']);
        expect(tour.stack.handler).to.equal('MoveInventoryHandler');
      });

      it('should run the usecasecore CLI from node_modules/.bin', async () => {
        const env = { ...process.env, PATH: `${dirname(node)}${delimiter}${process.env.PATH}` };
        const { stdout } = await run(join(project, 'node_modules', '.bin', 'usecasecore'), ['--help'], {
          cwd: project,
          env,
        });
        expect(stdout).to.include('migrate').and.include('outbox status').and.include('audit verify');
      });
    });
  }

  // After the Node runs above, which imported every other subpath in a project without the peer.
  describe('the optional peer @opentelemetry/api', () => {
    const probe = "const m = await import('usecasecore/otel'); console.log(Object.keys(m).sort().join())";
    it('should not be installed with the package, and usecasecore/otel should say it needs it', async () => {
      const failed = await run(process.execPath, ['--input-type=module', '-e', probe], { cwd: project }).then(
        () => expect.fail('usecasecore/otel loaded without @opentelemetry/api'),
        (error: { stderr: string }) => error,
      );
      expect(failed.stderr).to.include("'@opentelemetry/api'");
    });

    it('should let usecasecore/otel load once the peer is installed', async () => {
      const api = JSON.parse(readFileSync(join(repo, 'node_modules/@opentelemetry/api/package.json'), 'utf8')).version;
      await run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', `@opentelemetry/api@${api}`], {
        cwd: project,
        timeout: 120_000,
      });
      const { stdout } = await run(process.execPath, ['--input-type=module', '-e', probe], { cwd: project });
      expect(stdout.trim().split(',')).to.include.members(['extractTraceContext', 'otelModule', 'tracing']);
    });
  });
});
