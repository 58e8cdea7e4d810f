// The Postgres bench's sealer process: `auditSealer` on a connection of its own, outside the app's worker, as a
// deployment runs it (in the relay process: `usecasecore relay` seals by default). Its CPU time is its own, so the
// report can show the app's CPU per op and the sealing's CPU per op side by side.
import knex, { type Knex } from 'knex';
import { KnexAuditStore, KnexUnitOfWork, tables } from '../adapters/knex/index.js';
import { auditSealer, type AuditSealer } from '../lib/audit/index.js';
import type { FromSealer, SealLag, ToSealer } from './pg-common.js';

const LAG_SAMPLE_MS = 50;

let db: Knex | undefined;
let sealer: AuditSealer | undefined;
let measuring: { cpu: NodeJS.CpuUsage; lag: { stop(): Promise<SealLag> } } | undefined;

const reply = (message: FromSealer) => new Promise<void>((resolve) => process.send!(message, () => resolve()));

/** Samples the age of the oldest committed, unsealed audit record until stopped. */
function sampleSealLag(on: Knex): { stop(): Promise<SealLag> } {
  const ages: number[] = [];
  let busy: Promise<void> | undefined;
  const timer = setInterval(() => {
    busy ??= on
      .raw(`SELECT extract(epoch FROM clock_timestamp() - min(at)) * 1000 AS ms FROM ?? WHERE seq IS NULL`, [
        tables().audit,
      ])
      .then(({ rows }: { rows: Array<{ ms: string | null }> }) => {
        ages.push(Math.max(0, Number(rows[0]?.ms ?? 0)));
      })
      .finally(() => (busy = undefined));
  }, LAG_SAMPLE_MS);
  return {
    async stop() {
      clearInterval(timer);
      await busy;
      const sorted = [...ages].sort((a, b) => a - b);
      return { maxMs: sorted.at(-1) ?? 0, p50Ms: sorted[Math.floor(sorted.length / 2)] ?? 0, samples: ages.length };
    },
  };
}

process.on('message', (message: ToSealer) => {
  void (async () => {
    try {
      if (message.type === 'init') {
        db = knex({ client: 'pg', connection: message.url, searchPath: [message.schema], pool: { min: 1, max: 2 } });
        const store = new KnexAuditStore(new KnexUnitOfWork(db), tables().audit, tables().auditHeads);
        const onError = (error: unknown) => process.stderr.write(`[sealer] sealing failed: ${String(error)}\n`);
        sealer = auditSealer(store, { everyMs: message.everyMs, onError });
        await reply({ type: 'ready' });
      } else if (message.type === 'mark') {
        measuring = { cpu: process.cpuUsage(), lag: sampleSealLag(db!) };
        await reply({ type: 'ready' });
      } else if (message.type === 'measure') {
        const sealLag = await measuring!.lag.stop();
        const used = process.cpuUsage(measuring!.cpu);
        measuring = undefined;
        await reply({ type: 'measured', cpuUs: used.user + used.system, sealLag });
      } else {
        await sealer?.stop();
        await db?.destroy();
        process.disconnect();
      }
    } catch (error) {
      await reply({ type: 'error', message: (error as Error).stack ?? String(error) });
    }
  })();
});
