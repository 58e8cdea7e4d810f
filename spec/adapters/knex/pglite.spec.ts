// The knex adapters on embedded Postgres (PGlite) against every port contract.
import { sharedPglite } from '../../support/db.js';
import { knexContracts } from './contracts.js';

describe('knex adapters on PGlite', () => knexContracts('PGlite', sharedPglite));
