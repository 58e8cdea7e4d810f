// The worker that dies: runs Touch jobs and exits the moment a job's transaction committed — before it acks the
// message and before its relay could publish the onSuccess callback the commit staged.
import { AmqpConnection } from '../../../adapters/amqp/index.js';
import { TOKENS } from '../../../lib/core/index.js';
import { work } from '../../../lib/jobs/index.js';
import type { MessageSource } from '../../../lib/messaging/index.js';
import { scopedKnex } from '../../support/sample-db.js';
import { Touch, hooks, jobsApp } from './app.js';

const { DATABASE_URL, SCHEMA, AMQP_URL, EXCHANGES } = process.env;
const db = scopedKnex(DATABASE_URL!, SCHEMA!, 2);
const { container, mediator } = jobsApp(db, AMQP_URL!, JSON.parse(EXCHANGES!));
hooks.afterTouch = () => {
  process.stdout.write('COMMITTED\n');
  process.exit(0);
};
await work(mediator, container.get<MessageSource>(TOKENS.MessageSource), [Touch]);
process.stdout.write('WORKING\n');
process.on(
  'SIGTERM',
  () =>
    void container
      .get(AmqpConnection)
      .close()
      .then(() => process.exit(0)),
);
