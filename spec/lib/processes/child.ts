// A worker of the checkout process on Postgres and RabbitMQ that the crash spec kills: it runs the step jobs and the
// wait subscribers of the schema and exchanges it is given, relaying what other processes commit too, and stops for
// good at the gate KILL_AT names (checkout.ts), for its SIGKILL.
import 'reflect-metadata';
import knex from 'knex';
import { TOKENS } from '../../../lib/core/index.js';
import type { RunningRelay } from '../../../lib/messaging/index.js';
import { gates } from './checkout.js';
import { checkoutApp, knexContainer } from './world.js';

const { DATABASE_URL, SCHEMA, AMQP_URL, EXCHANGES, SERVICE, KILL_AT } = process.env;
gates.at = KILL_AT || undefined;
const db = knex({ client: 'pg', connection: DATABASE_URL!, pool: { min: 0, max: 6 } });
const container = knexContainer(db, SCHEMA!, undefined, { url: AMQP_URL!, exchanges: JSON.parse(EXCHANGES!) });
await checkoutApp(container, SERVICE!);
container.get<RunningRelay>(TOKENS.Relay).start(50); // rows another process committed and could not publish
process.stdout.write('WORKING\n');
