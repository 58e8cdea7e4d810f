// usecasecore/testing under node:test: a child process runs two contract suites with node:test's describe and it.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect } from '../../support/helpers.js';

const suites = fileURLToPath(new URL('./node-test-suites.ts', import.meta.url));

/** Runs `node --import tsx --test` on a file and gives back its exit code and TAP output. */
function nodeTest(file: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const args = ['--import', 'tsx', '--test', '--test-reporter=tap', file];
    const child = execFile(process.execPath, args, { timeout: 60_000 }, (_error, stdout, stderr) => {
      resolve({ code: child.exitCode, stdout, stderr });
    });
  });
}

describe('usecasecore/testing under node:test', function () {
  this.timeout(60_000);

  it('should run the Inbox and messaging contracts on memory and pass all 19 cases', async () => {
    const { code, stdout, stderr } = await nodeTest(suites);
    expect(code, `node --test failed:\n${stdout}\n${stderr}`).to.equal(0);
    expect(stdout).to.match(/^# tests 19$/m);
    expect(stdout).to.match(/^# pass 19$/m);
    expect(stdout).to.match(/^# fail 0$/m);
  });
});
