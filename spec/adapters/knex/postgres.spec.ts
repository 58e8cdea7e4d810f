// The knex adapters on the machine's Postgres (DATABASE_URL) against every port contract.
import type { Knex } from 'knex';
import { postgres } from '../../support/db.js';
import { knexContracts } from './contracts.js';

let db: Promise<Knex | undefined> | undefined;
describe('knex adapters on Postgres', () => knexContracts('Postgres', () => (db ??= postgres())));
