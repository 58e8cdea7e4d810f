// The soak's service processes: the sample server (samples/server.ts) spawned on the run's schema and broker prefix,
// with its memory read after a full GC on demand (SAMPLE_STATS=1, SIGUSR2).
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** One `sample-stats` line of the service (see samples/server.ts). */
export interface ServiceStats {
  readonly pid: number;
  readonly afterGc: boolean;
  readonly rss: number;
  readonly heapUsed: number;
  readonly sendsInFlight: number;
  readonly resources: number;
}

/** How a service process ended. */
export interface ServiceExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly at: number;
}

/** A running sample server; `start()` again after it ended (a new process, a new port). */
export class SampleService {
  #proc: ChildProcess | undefined;
  #url: string | undefined;
  #exited: Promise<ServiceExit> | undefined;
  #statsWaiters: Array<(stats: ServiceStats) => void> = [];
  /** Every process this service ran, by pid, with how it ended (filled as they end). */
  readonly runs: Array<{ pid: number; exit?: ServiceExit }> = [];

  constructor(
    readonly name: string,
    private readonly env: Readonly<Record<string, string>>,
    private readonly echo: (line: string) => void,
  ) {}

  /** The base URL while the process is up and listening, else undefined. */
  get url(): string | undefined {
    return this.#url;
  }

  get pid(): number | undefined {
    return this.#proc?.pid;
  }

  /** Spawns the process and resolves once it listens (rejects if it exits first or takes over 60 s). */
  async start(): Promise<void> {
    const proc = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', 'samples/server.ts'], {
      cwd: REPO_ROOT,
      env: { ...process.env, ...this.env, PORT: '0', SAMPLE_STATS: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.#proc = proc;
    const run: { pid: number; exit?: ServiceExit } = { pid: proc.pid! };
    this.runs.push(run);
    this.#exited = once(proc, 'exit').then(([code, signal]) => {
      run.exit = { code, signal, at: Date.now() };
      if (this.#proc === proc) this.#url = undefined;
      return run.exit;
    });
    let listening!: (url: string) => void;
    const banner = new Promise<string>((resolve) => (listening = resolve));
    for (const stream of [proc.stdout!, proc.stderr!]) {
      createInterface({ input: stream }).on('line', (line) => {
        const stats = line.match(/^sample-stats (.*)$/);
        if (stats) {
          const parsed = JSON.parse(stats[1]!) as ServiceStats;
          for (const wake of this.#statsWaiters.splice(0)) wake(parsed);
          return;
        }
        const url = line.match(/usecasecore sample on http:\/\/localhost:(\d+)/);
        if (url) listening(`http://127.0.0.1:${url[1]}`);
        this.echo(`[${this.name} ${proc.pid}] ${line}`);
      });
    }
    let timer: NodeJS.Timeout | undefined;
    const url = await Promise.race([
      banner,
      this.#exited.then((exit) => {
        throw new Error(`${this.name} exited (${exit.code ?? exit.signal}) before listening`);
      }),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${this.name} did not listen within 60 s`)), 60_000);
      }),
    ]).finally(() => clearTimeout(timer));
    this.#url = url;
  }

  /** Its memory after a full GC, or undefined when it is down or does not answer within `timeoutMs`. */
  async stats(timeoutMs = 5_000): Promise<ServiceStats | undefined> {
    const proc = this.#proc;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return undefined;
    let timer: NodeJS.Timeout | undefined;
    const answer = new Promise<ServiceStats | undefined>((resolve) => {
      this.#statsWaiters.push(resolve);
      timer = setTimeout(() => resolve(undefined), timeoutMs);
    });
    proc.kill('SIGUSR2');
    return answer.finally(() => clearTimeout(timer));
  }

  /**
   * Sends `signal` to the process (if it runs) and resolves when it has exited. SIGTERM takes it out of the targets
   * first, as a load balancer deregisters an instance before stopping it; after SIGKILL clients find out by failing.
   */
  async kill(signal: NodeJS.Signals): Promise<ServiceExit | undefined> {
    const proc = this.#proc;
    if (!proc || !this.#exited) return undefined;
    if (proc.exitCode === null && proc.signalCode === null) {
      if (signal !== 'SIGKILL') this.#url = undefined;
      proc.kill(signal);
    }
    return this.#exited;
  }

  /** SIGKILLs the process at once, synchronously (for an 'exit' handler). */
  killNow(): void {
    const proc = this.#proc;
    if (proc && proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
  }
}
