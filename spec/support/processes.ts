// Child processes for the specs: TypeScript files run by this Node under tsx. `spawnChild` for one that runs
// alongside the case (wait for what it prints, feed it lines, SIGKILL it), `runToEnd` for one run to its exit.
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { once } from 'node:events';
import type { Readable, Writable } from 'node:stream';

/** A running child: what it printed so far, and ways to wait for a line, write to it and kill it. */
export interface Child {
  /** Its stdin is null when it was spawned with `stdin: 'ignore'`. */
  readonly proc: ChildProcessByStdio<Writable | null, Readable, null>;
  /** Resolves with its exit code (null when a signal ended it) once it has exited. */
  readonly exited: Promise<number | null>;
  /** Resolves with the first match of `pattern` in its stdout (past or future); rejects if it exits first. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Every match of a global `pattern` in its stdout so far. */
  all(pattern: RegExp): RegExpMatchArray[];
  /** Writes one line to its stdin. */
  send(line: string): void;
  /** SIGKILLs it (no handler, no cleanup runs) and resolves once it is gone. */
  kill(): Promise<void>;
}

export interface SpawnOptions {
  /** `'ignore'` for a child that is never sent a line; `'pipe'` by default. */
  readonly stdin?: 'pipe' | 'ignore';
  /** How long `waitFor` waits when not told; 20 s by default. */
  readonly timeoutMs?: number;
}

/** Starts `file` (an absolute path) with `env` on top of this process's environment; its stderr goes to ours. */
export function spawnChild(file: string, env: Record<string, string>, options: SpawnOptions = {}): Child {
  const { stdin = 'pipe', timeoutMs: defaultTimeoutMs = 20_000 } = options;
  // `stdin` is either, so no overload of spawn types the streams: these are the ones `stdio` asks for.
  const proc = spawn(process.execPath, ['--import', 'tsx', file], {
    env: { ...process.env, ...env },
    stdio: [stdin, 'pipe', 'inherit'],
  }) as ChildProcessByStdio<Writable | null, Readable, null>;
  const exited = new Promise<number | null>((resolve) => proc.once('exit', resolve));
  let out = '';
  let ended = false; // it exited and all it printed is in `out`
  proc.stdout.setEncoding('utf8');
  proc.stdout.on('data', (chunk: string) => {
    out += chunk;
    proc.emit('printed');
  });
  proc.once('close', () => {
    ended = true;
    proc.emit('printed');
  });
  return {
    proc,
    exited,
    waitFor(pattern, timeoutMs = defaultTimeoutMs) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const match = out.match(pattern);
          if (match) finish(() => resolve(match));
          else if (ended) finish(() => reject(new Error(`child exited (${proc.exitCode}) before ${pattern}: ${out}`)));
        };
        const timer = setTimeout(
          () => finish(() => reject(new Error(`child printed no ${pattern} within ${timeoutMs} ms: ${out}`))),
          timeoutMs,
        );
        const finish = (settle: () => void) => {
          clearTimeout(timer);
          proc.off('printed', check);
          settle();
        };
        proc.on('printed', check);
        check();
      });
    },
    all: (pattern) => [...out.matchAll(pattern)],
    send(line) {
      if (!proc.stdin) throw new Error(`child ${file} was spawned with stdin ignored`);
      proc.stdin.write(`${line}\n`);
    },
    async kill() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      await exited;
    },
  };
}

/** Runs `file` (an absolute path) with `args` and `env` on top of this process's environment to its end. */
export async function runToEnd(
  file: string,
  args: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const proc = spawn(process.execPath, ['--import', 'tsx', file, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '',
    stderr = '';
  proc.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
  });
  proc.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  const [code] = (await once(proc, 'close')) as [number | null]; // 'close': after the last of its output
  return { code, stdout, stderr };
}
