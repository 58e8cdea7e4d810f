#!/usr/bin/env node
// `usecasecore`: the library's command line (migrations, the relay, the outbox, retention, audit checks, processes,
// jobs).
import { auditVerifyCommand } from './audit.js';
import { COMMON_HELP, EXIT, runCommand, type Command } from './common.js';
import { idempotencyReapCommand } from './idempotency.js';
import { inboxPurgeCommand } from './inbox.js';
import { jobsCancelCommand, jobsListCommand, jobsPurgeCommand, jobsShowCommand } from './jobs.js';
import { migrateCommand } from './migrate.js';
import { outboxPurgeCommand, outboxRetryCommand, outboxStatusCommand } from './outbox.js';
import {
  processesCancelCommand,
  processesListCommand,
  processesRetryCommand,
  processesShowCommand,
} from './processes.js';
import { relayCommand } from './relay.js';

const COMMANDS: readonly Command[] = [
  migrateCommand,
  relayCommand,
  outboxStatusCommand,
  outboxRetryCommand,
  outboxPurgeCommand,
  inboxPurgeCommand,
  idempotencyReapCommand,
  auditVerifyCommand,
  processesListCommand,
  processesShowCommand,
  processesRetryCommand,
  processesCancelCommand,
  jobsListCommand,
  jobsShowCommand,
  jobsCancelCommand,
  jobsPurgeCommand,
];

const USAGE = 'Usage: usecasecore <command> [options]   (usecasecore --help lists the commands)';

function help(commands: readonly Command[]): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return `usecasecore: run the library's migrations and relay, look after the outbox, inbox and idempotency records,
the processes and the jobs, and verify the audit log.

${USAGE.split('   ')[0]}

Commands:
${commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`).join('\n')}

${COMMON_HELP}

Exit codes: 0 success, 1 a problem was found (or the work failed), 2 bad usage.
Each command has its own help: usecasecore <command> --help
`;
}

/** Finds the command `argv` names and runs it; returns the exit code. */
async function main(argv: readonly string[]): Promise<number> {
  const [first, second] = argv;
  if (first === '--help' || first === '-h') {
    process.stdout.write(help(COMMANDS));
    return EXIT.ok;
  }
  const command = COMMANDS.find((c) => c.name === `${first} ${second}`) ?? COMMANDS.find((c) => c.name === first);
  if (command) return runCommand(command, argv.slice(command.name.split(' ').length));
  const group = COMMANDS.filter((c) => c.name.startsWith(`${first} `));
  if (group.length > 0 && (second === '--help' || second === '-h')) {
    process.stdout.write(help(group));
    return EXIT.ok;
  }
  if (first === undefined) {
    process.stderr.write(
      `usecasecore: which command? — use one of: ${COMMANDS.map((c) => c.name).join(', ')}\n` + `${USAGE}\n`,
    );
    return EXIT.usage;
  }
  const [named, known] = group.length > 0 ? [`${first} ${second ?? ''}`.trim(), group] : [first, COMMANDS];
  process.stderr.write(
    `usecasecore: unknown command "${named}" — use one of: ${known.map((c) => c.name).join(', ')}\n` + `${USAGE}\n`,
  );
  return EXIT.usage;
}

process.exitCode = await main(process.argv.slice(2));
