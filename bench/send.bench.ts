// Send overhead: usecasecore's mediator vs a direct call, koa-compose, mediatr-ts and @nestjs/cqrs, in one process.
//
//   npm run bench                      # full run (~30 s), prints Markdown to stdout
//   BENCH_ONLY=ucc-full npm run bench  # only some rows (comma-separated ids), e.g. for profiling
//
// Knobs: BENCH_ROUNDS (default 60), BENCH_BATCH_MS (15), BENCH_WARM_MS (500), BENCH_FRESH (0; 1 rebuilds container + memory adapters before every batch of the full-stack rows —
// on Node 20 that shows each MemoryUnitOfWork's AsyncLocalStorage staying enabled forever, see README).
//
// Two phases, because the memory unit of work uses AsyncLocalStorage: on Node 20 its first run() installs async
// hooks for the whole process, and every promise created afterwards (in any library) gets slower. Phase A times the
// rows that do not need it in a clean process; phase B turns the hooks on (by sending through the full stack) and
// times every row again.
import os from 'node:os';
import { calibrate, fmt, ratio, sample, stats, type Case, type Samples, type Stats } from './harness.js';
import { directCase, koaCase, mediatrCase, nestCase } from './peers.js';
import { emptyStackCase, fullStackCase } from './usecasecore.js';

const env = (name: string, fallback: number) => {
  const raw = process.env[name];
  return raw === undefined || raw === '' ? fallback : Number(raw);
};
const ROUNDS = env('BENCH_ROUNDS', 60);
const BATCH_MS = env('BENCH_BATCH_MS', 15);
const WARM_MS = env('BENCH_WARM_MS', 500);
const FRESH = env('BENCH_FRESH', 0) !== 0;
const ONLY = process.env.BENCH_ONLY ? new Set(process.env.BENCH_ONLY.split(',').map((s) => s.trim())) : undefined;

const nest = await nestCase();
const peers: Case[] = [directCase(), koaCase(), mediatrCase(), nest];
const empty: Case[] = [emptyStackCase('new'), emptyStackCase('from')];
const full: Case[] = [
  fullStackCase({ idempotent: false, fresh: FRESH }),
  fullStackCase({ idempotent: true, fresh: FRESH }),
];
const pick = (cases: Case[]) => cases.filter((c) => !ONLY || ONLY.has(c.id));

async function phase(cases: Case[]): Promise<Map<string, { samples: Samples; stats: Stats }>> {
  const batches = new Map<string, number>();
  for (const c of cases) {
    await c.verify();
    batches.set(c.id, await calibrate(c, WARM_MS, BATCH_MS));
    await c.reset?.();
  }
  const out = new Map<string, { samples: Samples; stats: Stats }>();
  for (const s of await sample(cases, batches, ROUNDS)) out.set(s.id, { samples: s, stats: stats(s.perOpNs) });
  return out;
}

const started = Date.now();
// Phase A: nothing has called AsyncLocalStorage.run yet (the full-stack rows are built but have not sent).
const clean = await phase(pick([...peers, ...empty]));
// Phase B: verify() of the full-stack rows sends through MemoryUnitOfWork, which enables the async hooks.
const hooked = await phase(pick([...peers, ...empty, ...full]));
await nest.close();
const seconds = ((Date.now() - started) / 1000).toFixed(1);

// ---- report -------------------------------------------------------------------------------------------------------

const all = [...peers, ...empty, ...full];
// Row numbers as in the list; 5b is the extra `from()` variant of the empty stack.
const ROW: Record<string, string> = {
  direct: '1',
  koa: '2',
  mediatr: '3',
  nest: '4',
  'ucc-empty': '5',
  'ucc-empty-from': '5b',
  'ucc-full': '6',
  'ucc-full-idem': '7',
};
const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
const lines: string[] = [];
lines.push(
  `Run ${new Date().toISOString()} · Node ${process.version} · ${os.availableParallelism()} CPUs (nproc) · ${cpu} · ${os.platform()} ${os.release()}`,
);
lines.push(
  `${ROUNDS} rounds × one batch per row per round (batch sized to ~${BATCH_MS} ms, after ≥${WARM_MS} ms warm-up), rows interleaved; per-op time = batch time / batch size; memory adapters rebuilt between rounds: ${FRESH ? 'yes' : 'no'}. Took ${seconds} s.`,
);
lines.push('');
lines.push(
  '| # | row | A: clean process, median (p10–p90) | B: async hooks on, median (p10–p90) | B vs direct (B) | batch |',
);
lines.push(
  '|---|-----|-----------------------------------:|------------------------------------:|----------------:|------:|',
);
const directB = hooked.get('direct')?.stats.median;
all.forEach((c) => {
  const a = clean.get(c.id),
    b = hooked.get(c.id);
  if (!a && !b) return;
  const cell = (x: typeof a) => (x ? `${fmt(x.stats.median)} (${fmt(x.stats.p10)}–${fmt(x.stats.p90)})` : '—');
  const vs = b && directB ? ratio(b.stats.median, directB) : '—';
  const batch = (b ?? a)!.samples.batch;
  lines.push(`| ${ROW[c.id] ?? '?'} | ${c.label} | ${cell(a)} | ${cell(b)} | ${vs} | ${batch} |`);
});

const med = (m: typeof clean, id: string) => m.get(id)?.stats.median;
const ratios: string[] = [];
const verdict = (value: number, limit: number) =>
  value <= limit ? `**met** (≤ ${limit}×)` : `**not met** (> ${limit}×)`;
const fullB = med(hooked, 'ucc-full'),
  koaA = med(clean, 'koa'),
  koaB = med(hooked, 'koa');
const emptyA = med(clean, 'ucc-empty'),
  nestA = med(clean, 'nest'),
  emptyB = med(hooked, 'ucc-empty'),
  nestB = med(hooked, 'nest');
if (fullB && koaA) {
  ratios.push(
    `- Full stack (row 6, hooks on — they are part of its cost) vs koa-compose-7 in a clean process (A): **${ratio(fullB, koaA)}** — target ${verdict(fullB / koaA, 2)}`,
  );
}
if (fullB && koaB)
  ratios.push(
    `- Full stack vs koa-compose-7, both with hooks on (B, like-for-like process): ${ratio(fullB, koaB)} — ${verdict(fullB / koaB, 2)}`,
  );
const idemB = med(hooked, 'ucc-full-idem');
if (idemB && koaA)
  ratios.push(
    `- Full stack + fresh idempotency key (row 7) vs koa-compose-7 (A): ${ratio(idemB, koaA)} (no target; shown for scale)`,
  );
if (emptyA && nestA)
  ratios.push(
    `- Empty stack (row 5) vs @nestjs/cqrs, clean process (A): **${ratio(emptyA, nestA)}** — target ${verdict(emptyA / nestA, 1.5)}`,
  );
if (emptyB && nestB)
  ratios.push(`- Empty stack vs @nestjs/cqrs, hooks on (B): ${ratio(emptyB, nestB)} — ${verdict(emptyB / nestB, 1.5)}`);
const directA = med(clean, 'direct');
for (const c of all) {
  const a = med(clean, c.id);
  if (c.id !== 'direct' && a && directA) ratios.push(`- ${c.label} vs direct (A): ${ratio(a, directA)}`);
}
if (koaA && koaB) ratios.push(`- Async-hook tax on koa-compose-7 alone (B / A): ${ratio(koaB, koaA)}`);

console.log([...lines, '', '**Ratios (medians)**', '', ...ratios].join('\n'));
