// Send overhead: usecasecore's mediator vs a direct call, koa-compose, mediatr-ts and @nestjs/cqrs, in one process.
//
//   npm run bench                      # full run (~30 s), prints Markdown to stdout
//   BENCH_ONLY=ucc-full npm run bench  # only some rows (comma-separated ids), e.g. for profiling
//   BENCH_ONLY=ucc-full,ucc-full-otel-api,ucc-full-otel-sdk npm run bench   # the tracing overhead (issue 10)
//
// Knobs: BENCH_ROUNDS (default 60), BENCH_BATCH_MS (15), BENCH_WARM_MS (500), BENCH_FRESH (0; 1 rebuilds container
// + memory adapters before every batch of the full-stack rows — on Node 20 that shows each MemoryUnitOfWork's
// AsyncLocalStorage staying enabled forever, see README).
//
// Two phases, because the memory unit of work uses AsyncLocalStorage: on Node 20 its first run() installs async
// hooks for the whole process, and every promise created afterwards (in any library) gets slower. Phase A times the
// rows that do not need it in a clean process; phase B turns the hooks on (by sending through the full stack) and
// times every row again. The OpenTelemetry rows (8, 9) are timed in phase B only, like rows 6 and 7.
import os from 'node:os';
import {
  calibrate,
  envNumber,
  fmt,
  ratio,
  sample,
  stats,
  type Case,
  type Samples,
  type Stats,
  within,
} from './harness.js';
import { directCase, koaCase, mediatrCase, nestCase } from './peers.js';
import { emptyStackCase, fullStackCase, otelApiCase, otelSdkCase } from './usecasecore.js';

const env = envNumber;
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
const otelSdk = otelSdkCase({ fresh: FRESH });
const otel: Case[] = [otelApiCase({ fresh: FRESH }), otelSdk];
const pick = (cases: Case[]) => cases.filter((c) => !ONLY || ONLY.has(c.id));

async function phase(cases: Case[]): Promise<Map<string, { samples: Samples; stats: Stats }>> {
  const batches = new Map<string, number>();
  for (const c of cases) {
    await within(c, () => c.verify());
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
const hooked = await phase(pick([...peers, ...empty, ...full, ...otel]));
await nest.close();
const sdkSpans = hooked.has(otelSdk.id) ? await otelSdk.spans() : undefined;
await otelSdk.close();
const seconds = ((Date.now() - started) / 1000).toFixed(1);

// ---- report -------------------------------------------------------------------------------------------------------

const all = [...peers, ...empty, ...full, ...otel];
// Row numbers as in the issue's list; 5b is the extra `from()` variant of the empty stack.
const ROW: Record<string, string> = {
  direct: '1',
  koa: '2',
  mediatr: '3',
  nest: '4',
  'ucc-empty': '5',
  'ucc-empty-from': '5b',
  'ucc-full': '6',
  'ucc-full-idem': '7',
  'ucc-full-otel-api': '8',
  'ucc-full-otel-sdk': '9',
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

// Issue 10: what tracing() + otelModule() add to row 6, both timed in phase B, on wall-clock and on CPU time (CPU
// time leaves out the time other processes hold the CPU). Three estimates each: the ratio of the medians, of the
// p10s (the least disturbed batches: contention only ever adds time), and the median of the per-round ratios (the
// rows are interleaved, so each round's pair saw the same machine).
const otelRows: string[] = [];
const otelEstimates: number[] = [];
const pct = (r: number) => `${r >= 1 ? '+' : '−'}${(Math.abs(r - 1) * 100).toFixed(1)} %`;
for (const [id, row] of [
  ['ucc-full-otel-api', '8'],
  ['ucc-full-otel-sdk', '9'],
] as const) {
  for (const [key, clock] of [
    ['perOpNs', 'wall'],
    ['perOpCpuNs', 'CPU'],
  ] as const) {
    const x = hooked.get(id)?.samples[key],
      y = hooked.get('ucc-full')?.samples[key];
    if (!x || !y) continue;
    const a = stats(x),
      b = stats(y),
      round = stats(x.map((v, i) => v / y[i]!));
    if (id === 'ucc-full-otel-api') otelEstimates.push(a.median / b.median, a.p10 / b.p10, round.median);
    otelRows.push(
      `| ${row} \`${id}\` | ${clock} | ${fmt(b.median)} | ${fmt(a.median)} | ${pct(a.median / b.median)} | ${pct(a.p10 / b.p10)} | ${pct(round.median)} (${round.p10.toFixed(2)}–${round.p90.toFixed(2)}×) |`,
    );
  }
}
const otelReport: string[] = [];
if (otelRows.length > 0) {
  otelReport.push(
    '',
    '**Tracing overhead (issue 10): rows 8–9 vs row 6, phase B**',
    '',
    '| row | clock | row 6 median | row median | ÷ row 6, medians | ÷ row 6, p10s | ÷ row 6 per round, median (p10–p90) |',
    '|-----|-------|-------------:|-----------:|-----------------:|--------------:|-------------------------------------:|',
    ...otelRows,
    '',
  );
  // Any of rows 1–4 in the same process slows row 6 by 10–20 % but row 8 hardly (JIT state shared by the rows; see
  // README, "Tracing overhead"): then row 8 ÷ row 6 understates tracing()'s cost, and no verdict is given.
  const peersIn = peers.filter((c) => hooked.has(c.id)).map((c) => ROW[c.id]);
  if (otelEstimates.length > 0 && peersIn.length > 0) {
    otelReport.push(
      `- Row 8 vs row 6, target ±3 %: **not judged in this run** — row${peersIn.length > 1 ? 's' : ''} ${peersIn.join(', ')} ran in the same process, which slows row 6 (not row 8) by 10–20 %; judge it with \`BENCH_ONLY=ucc-full,ucc-full-otel-api,ucc-full-otel-sdk npm run bench\``,
    );
  } else if (otelEstimates.length > 0) {
    const inside = otelEstimates.filter((r) => r <= 1.03).length,
      n = otelEstimates.length;
    otelReport.push(
      `- Row 8 (\`tracing()\` + \`otelModule()\`, no SDK) vs row 6, target ±3 %: ${
        inside === n
          ? `**met** (all ${n} estimates)`
          : inside === 0
            ? `**not met** (all ${n} estimates above +3 %)`
            : `**inconclusive** (${inside} of ${n} estimates within it: noise)`
      }`,
    );
  }
  if (hooked.has('ucc-full-otel-sdk'))
    otelReport.push('- Row 9 (SDK, BatchSpanProcessor over an exporter that drops): no target; shown for scale');
  if (sdkSpans) {
    otelReport.push(
      `- Row 9 spans: ${sdkSpans.sends} sends, ${sdkSpans.exported} spans exported${sdkSpans.exported === sdkSpans.sends ? ' (one per send, none dropped)' : ' — **MISMATCH: spans were dropped or extra**'}`,
    );
  }
}

console.log([...lines, '', '**Ratios (medians)**', '', ...ratios, ...otelReport].join('\n'));
