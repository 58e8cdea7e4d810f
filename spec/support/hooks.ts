// Mocha root hooks. Before any spec: the services' usual local addresses unless DATABASE_URL / AMQP_URL are set, so
// specs (and the processes they start) find Postgres and RabbitMQ without being told. After every spec: the shared
// databases closed, so mocha exits on its own, and the services summary written for npm test's last line.
import { closeDatabases } from './db.js';
import { DEFAULT_AMQP_URL, DEFAULT_DATABASE_URL, writeSummary } from './services.js';

process.env.DATABASE_URL ||= DEFAULT_DATABASE_URL;
process.env.AMQP_URL ||= DEFAULT_AMQP_URL;

/** How long mocha may take to exit on its own once every spec ran and the databases closed. */
const EXIT_GRACE_MS = 30_000;

export const mochaHooks = {
  async afterAll() {
    await closeDatabases();
    writeSummary();
    // A spec that leaves a handle open (a child process, a socket, a timer) keeps mocha alive for ever: CI would
    // wait for its time limit and report nothing. Name what is open and fail instead. Unref'd: a clean run exits
    // before it fires. The exit listener goes after mocha's, which would set the code to the count of failures.
    setTimeout(() => {
      const open = process.getActiveResourcesInfo().filter((what) => what !== 'TTYWrap');
      console.error(`\nmocha did not exit ${EXIT_GRACE_MS} ms after the last spec; still open: ${open.join(', ')}`);
      process.on('exit', () => (process.exitCode = 1));
      process.exit(1);
    }, EXIT_GRACE_MS).unref();
  },
};
