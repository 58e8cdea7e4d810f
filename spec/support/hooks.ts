// Mocha root hooks. Before any spec: the services' usual local addresses unless DATABASE_URL / AMQP_URL are set, so
// specs (and the processes they start) find Postgres and RabbitMQ without being told. After every spec: the shared
// databases closed, so mocha exits on its own, and the services summary written for npm test's last line.
import { closeDatabases } from './db.js';
import { DEFAULT_AMQP_URL, DEFAULT_DATABASE_URL, writeSummary } from './services.js';

process.env.DATABASE_URL ||= DEFAULT_DATABASE_URL;
process.env.AMQP_URL ||= DEFAULT_AMQP_URL;

export const mochaHooks = {
  async afterAll() {
    await closeDatabases();
    writeSummary();
  },
};
