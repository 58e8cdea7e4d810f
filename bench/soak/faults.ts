// The soak's faults: a broker restart, Postgres connections killed, a service SIGKILLed and restarted, a broker
// memory alarm. Each is recorded as a window, so errors inside it are told apart from errors outside. Broker state
// the soak changes is always put back: at the end of the fault, and on Ctrl-C or a crash (`restoreSync`).
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import type { Knex } from 'knex';
import type { SampleService } from './services.js';

const run = promisify(execFile);
/** Errors this long after a fault ended still count as inside it: clients retry, pools and consumers reconnect. */
export const SETTLE_MS = 10_000;

/** When a fault happened (ms since the epoch), and what it did. */
export interface FaultWindow {
  readonly name: string;
  readonly start: number;
  end: number;
  detail: string;
}

async function rabbitmqctl(...args: string[]): Promise<string> {
  const { stdout } = await run('rabbitmqctl', args, { timeout: 60_000 });
  return stdout.trim();
}

/** The broker's memory high watermark as `rabbitmqctl set_vm_memory_high_watermark` takes it back. */
export async function readWatermark(): Promise<string[]> {
  return parseWatermark(await rabbitmqctl('eval', 'vm_memory_monitor:get_vm_memory_high_watermark().'));
}

/** `0.4` → ['0.4']; `{absolute,1073741824}` → ['absolute', '1073741824']. */
export function parseWatermark(text: string): string[] {
  const absolute = text.match(/^\{absolute,\s*"?(\d+)"?\}$/);
  if (absolute) return ['absolute', absolute[1]!];
  if (/^\d+(\.\d+)?(e-?\d+)?$/i.test(text)) return [text];
  throw new Error(`cannot read the broker's memory watermark from "${text}"`);
}

/** Runs the faults and keeps their windows; knows what to put back if the run is interrupted. */
export class Faults {
  readonly windows: FaultWindow[] = [];
  /** The watermark to restore while an alarm is on, and whether the broker app is stopped. */
  #watermark: string[] | undefined;
  #brokerStopped = false;

  constructor(private readonly log: (line: string) => void) {}

  /** The fault window (its end plus SETTLE_MS included) that the span from `start` to `end` overlaps, if any. */
  windowOver(start: number, end = start): FaultWindow | undefined {
    return this.windows.find((w) => end >= w.start && start <= w.end + SETTLE_MS);
  }

  /** Opens a window for a fault the soak did not cause (the broker restarted by someone else); `end()` closes it. */
  open(name: string, detail: string): { end(): void } {
    const window: FaultWindow = { name, start: Date.now(), end: Number.POSITIVE_INFINITY, detail };
    this.windows.push(window);
    this.log(`fault: ${name} begins`);
    return {
      end: () => {
        window.end = Date.now();
        this.log(`fault: ${name} ends (${((window.end - window.start) / 1000).toFixed(1)} s)`);
      },
    };
  }

  async #window<T>(name: string, work: (window: FaultWindow) => Promise<T>): Promise<T> {
    const window: FaultWindow = { name, start: Date.now(), end: Number.POSITIVE_INFINITY, detail: '' };
    this.windows.push(window);
    this.log(`fault: ${name} begins`);
    try {
      return await work(window);
    } finally {
      window.end = Date.now();
      this.log(`fault: ${name} ends (${((window.end - window.start) / 1000).toFixed(1)} s) ${window.detail}`);
    }
  }

  /** `rabbitmqctl stop_app`, `downMs` without a broker, `start_app`. */
  brokerRestart(downMs: number): Promise<void> {
    return this.#window('broker restart', async (window) => {
      this.#brokerStopped = true;
      await rabbitmqctl('stop_app');
      await new Promise((resolve) => setTimeout(resolve, downMs));
      await rabbitmqctl('start_app');
      this.#brokerStopped = false;
      window.detail = `stop_app, ${downMs / 1000} s down, start_app`;
    });
  }

  /** Terminates every Postgres backend whose application_name starts with `prefix` (the services' pools). */
  pgKill(admin: Knex, prefix: string): Promise<void> {
    return this.#window('Postgres connections killed', async (window) => {
      const { rows } = await admin.raw(
        `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) AS n FROM pg_stat_activity
          WHERE application_name LIKE ? AND pid <> pg_backend_pid()`,
        [`${prefix}%`],
      );
      window.detail = `pg_terminate_backend of ${rows[0].n} backends named ${prefix}*`;
    });
  }

  /** SIGKILLs the service, waits `downMs`, starts it again. */
  processKill(service: SampleService, downMs: number): Promise<void> {
    return this.#window(`SIGKILL ${service.name}`, async (window) => {
      const pid = service.pid;
      await service.kill('SIGKILL');
      await new Promise((resolve) => setTimeout(resolve, downMs));
      await service.start();
      window.detail = `pid ${pid} killed, ${downMs / 1000} s down, restarted as ${service.pid}`;
    });
  }

  /** Sets the memory watermark so low the broker raises its memory alarm, holds it `holdMs`, restores it. */
  memoryAlarm(holdMs: number): Promise<void> {
    return this.#window('broker memory alarm', async (window) => {
      const previous = await readWatermark();
      this.#watermark = previous;
      try {
        await rabbitmqctl('set_vm_memory_high_watermark', '0.000001');
        await new Promise((resolve) => setTimeout(resolve, holdMs));
      } finally {
        await rabbitmqctl('set_vm_memory_high_watermark', ...previous);
        this.#watermark = undefined;
      }
      window.detail = `watermark 0.000001 for ${holdMs / 1000} s, restored to ${previous.join(' ')}`;
    });
  }

  /**
   * Puts the broker back as it was (watermark restored, app started), synchronously, so it also runs from an
   * 'exit' handler after Ctrl-C or a crash. Returns what it did.
   */
  restoreSync(): string[] {
    const done: string[] = [];
    const ctl = (...args: string[]) => execFileSync('rabbitmqctl', args, { stdio: 'ignore', timeout: 60_000 });
    if (this.#watermark) {
      ctl('set_vm_memory_high_watermark', ...this.#watermark);
      done.push(`memory watermark restored to ${this.#watermark.join(' ')}`);
      this.#watermark = undefined;
    }
    if (this.#brokerStopped) {
      ctl('start_app');
      done.push('broker app started');
      this.#brokerStopped = false;
    }
    return done;
  }
}
