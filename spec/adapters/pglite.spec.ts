// The knex adapters on embedded Postgres (PGlite) against every port contract.
import { sharedPglite } from '../db.js';
import { knexContracts } from './knex.contracts.js';

describe('knex adapters on PGlite', () => knexContracts('PGlite', sharedPglite));
