// Mocha root hooks: close the shared databases once every spec has run, so mocha exits on its own.
import { closeDatabases } from './db.js';

export const mochaHooks = {
  async afterAll() {
    await closeDatabases();
  },
};
