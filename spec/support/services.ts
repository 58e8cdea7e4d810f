// The services specs need, found where .ci/run and the README put them: Postgres and RabbitMQ at their usual local
// addresses unless DATABASE_URL / AMQP_URL say otherwise. A group that cannot run skips with what to start, and
// under CI=true fails instead. What ran and what was skipped is written for the line npm test ends with.
import { mkdirSync, writeFileSync } from 'node:fs';

export const DEFAULT_DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/test';
export const DEFAULT_AMQP_URL = 'amqp://guest:guest@127.0.0.1:5672';

/** How to start each service that can be missing. */
const START: Record<string, string> = {
  Postgres: 'pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start',
  RabbitMQ: 'rabbitmq-server -detached',
};

/** Every group's outcome this run: ran, or skipped and why (the first reason heard). */
const groups = new Map<string, { ran: number; skipped: number; why?: string }>();

function entry(group: string) {
  let found = groups.get(group);
  if (!found) groups.set(group, (found = { ran: 0, skipped: 0 }));
  return found;
}

/** Notes that a block of `group` runs. */
export function ran(group: string): void {
  entry(group).ran++;
}

/**
 * Notes that a block of `group` cannot run: throws under CI=true (a missing service fails the run), else says what
 * to start and returns undefined, for the block to skip.
 */
export function missing(group: string, why: string): undefined {
  if (process.env.CI === 'true') throw new Error(`${group} is required under CI=true: ${why}`);
  const found = entry(group);
  found.skipped++;
  found.why ??= why;
  const start = START[group] ? ` — start it with: ${START[group]}` : '';
  console.warn(`    (skipping ${group} specs: ${why}${start})`);
  return undefined;
}

/** `url` without its password, for messages. */
export function redacted(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//');
}

/** The closing line: which groups ran, which were skipped and why. */
export function summary(): string {
  if (groups.size === 0) return 'services: none needed';
  const parts = [...groups].map(([group, { ran, skipped, why }]) => {
    if (skipped === 0) return `${group} ran`;
    const start = START[group] ? `; start it with: ${START[group]}` : '';
    return `${group} ${ran > 0 ? 'partly ' : ''}skipped (${why}${start})`;
  });
  return `services: ${parts.join(' · ')}`;
}

/** Writes the summary where `.ci/services-summary.mjs` prints it after the coverage report. */
export function writeSummary(file = 'coverage/spec-services.txt'): void {
  mkdirSync('coverage', { recursive: true });
  writeFileSync(file, `${summary()}\n`);
}
