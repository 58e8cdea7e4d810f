#!/usr/bin/env node
// The public surface, as api-extractor reports it: one docs/api/<entry>.api.md per entry point of package.json,
// compared with the built declarations (run after `npm run build`). A change of the surface fails `npm test` until
// `npm run api:update` writes the new report, so it shows up as a diff in review.
//   node .ci/api-report.mjs            compare (CI)
//   node .ci/api-report.mjs --update   write the reports
import { readFileSync } from 'node:fs';
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const { Extractor, ExtractorConfig } = createRequire(import.meta.url)('@microsoft/api-extractor');
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const update = process.argv.includes('--update');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const reportFolder = join(root, 'docs', 'api');
mkdirSync(reportFolder, { recursive: true });

/** `usecasecore/adapters/knex` → `adapters-knex`; the root → `usecasecore`. */
const reportName = (subpath) => (subpath === '.' ? 'usecasecore' : subpath.slice(2).replaceAll('/', '-'));

const silent = { logLevel: 'none' };
let changed = 0;
for (const [subpath, target] of Object.entries(pkg.exports)) {
  if (typeof target !== 'object') continue; // ./package.json
  const config = ExtractorConfig.prepare({
    configObject: {
      projectFolder: root,
      mainEntryPointFilePath: join(root, target.types),
      compiler: { tsconfigFilePath: join(root, 'tsconfig.build.json') },
      apiReport: {
        enabled: true,
        reportFileName: `${reportName(subpath)}.api.md`,
        reportFolder,
        reportTempFolder: join(root, 'dist', 'api-report'),
      },
      docModel: { enabled: false },
      dtsRollup: { enabled: false },
      tsdocMetadata: { enabled: false },
      messages: {
        compilerMessageReporting: { default: { logLevel: 'error' } },
        extractorMessageReporting: { default: silent },
        tsdocMessageReporting: { default: silent },
      },
    },
    configObjectFullPath: join(root, '.ci', 'api-extractor.json'),
    packageJsonFullPath: join(root, 'package.json'),
  });
  const result = Extractor.invoke(config, { localBuild: update, showVerboseMessages: false });
  if (!result.succeeded || result.apiReportChanged) {
    changed++;
    const why = result.apiReportChanged ? 'the public surface changed' : `${result.errorCount} errors`;
    console.error(`api: ${subpath}: ${why}`);
  }
}
if (changed > 0 && !update) {
  console.error(
    `api: ${changed} entry point(s) differ from docs/api/*.api.md — if the change is meant, run npm run api:update, ` +
      'commit the reports and say so in the CHANGELOG',
  );
  process.exit(1);
}
console.log(update ? 'api: reports written to docs/api/' : 'api: the public surface matches docs/api/');
