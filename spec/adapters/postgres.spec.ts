// The knex adapters on the machine's Postgres (DATABASE_URL) against every port contract.
import type { Knex } from 'knex';
import { postgres } from '../db.js';
import { knexContracts } from './knex.contracts.js';

let db: Promise<Knex | undefined> | undefined;
describe('knex adapters on Postgres', () => knexContracts('Postgres', () => (db ??= postgres())));
