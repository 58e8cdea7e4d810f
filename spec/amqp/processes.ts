// Child processes for the RabbitMQ specs (spec/amqp/child.ts): spawn, wait for what they print, feed, SIGKILL.
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

const CHILD = fileURLToPath(new URL('./child.ts', import.meta.url));

/** A running child.ts: what it printed so far, and ways to wait for a line, write to it and kill it. */
export interface Child {
  readonly proc: ChildProcessByStdio<Writable, Readable, null>;
  /** Resolves with the first match of `pattern` in its output (past or future); rejects if it exits first. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Every match of a global `pattern` in its output so far. */
  all(pattern: RegExp): RegExpMatchArray[];
  /** Writes one line to its stdin. */
  send(line: string): void;
  /** SIGKILLs it (no handler, no cleanup runs) and resolves once it is gone. */
  kill(): Promise<void>;
}

/** Starts spec/amqp/child.ts with `env` on top of this process's environment. */
export function spawnChild(env: Record<string, string>): Child {
  const proc = spawn(process.execPath, ['--import', 'tsx', CHILD], {
    env: { ...process.env, ...env },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  let out = '';
  let exited = false;
  proc.stdout.setEncoding('utf8');
  proc.stdout.on('data', (chunk: string) => {
    out += chunk;
    proc.emit('printed');
  });
  proc.once('exit', () => {
    exited = true;
    proc.emit('printed');
  });
  return {
    proc,
    waitFor(pattern, timeoutMs = 20_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const match = out.match(pattern);
          if (match) finish(() => resolve(match));
          else if (exited) finish(() => reject(new Error(`child exited (${proc.exitCode}) before ${pattern}: ${out}`)));
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
    send: (line) => proc.stdin.write(`${line}\n`),
    async kill() {
      if (exited) return;
      const gone = once(proc, 'exit');
      proc.kill('SIGKILL');
      await gone;
    },
  };
}
