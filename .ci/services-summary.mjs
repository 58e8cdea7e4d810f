#!/usr/bin/env node
// npm test's last line: which service groups the specs ran and which they skipped, and why (spec/support/services.ts
// writes it when the specs end). `--clear` removes the previous run's line before the specs start.
import { readFileSync, rmSync } from 'node:fs';

const file = 'coverage/spec-services.txt';
if (process.argv.includes('--clear')) {
  rmSync(file, { force: true });
} else {
  let line;
  try {
    line = readFileSync(file, 'utf8').trim();
  } catch {
    line = 'services: unknown — the specs ended before they could say which ran';
  }
  console.log(line);
}
