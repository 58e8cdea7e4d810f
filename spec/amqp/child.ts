// A process that commits sends and is killed before its relay could publish them.
import { randomUUID } from 'node:crypto';
import { scopedKnex } from '../postgres/sample-db.js';
import { Emit, faultApp } from './app.js';

const { DATABASE_URL, SCHEMA, AMQP_URL, EXCHANGES, COUNT, PREFIX } = process.env;
const db = scopedKnex(DATABASE_URL!, SCHEMA!, 4);
const { mediator } = faultApp(db, AMQP_URL!, JSON.parse(EXCHANGES!), { relay: false });
for (let i = 0; i < Number(COUNT); i++) {
  const result = await mediator.send(Emit.from({ id: `${PREFIX}-${i}-${randomUUID().slice(0, 4)}` }));
  if (!result.ok) throw new Error(JSON.stringify(result));
}
process.stdout.write('COMMITTED\n');
await new Promise(() => undefined); // wait to be killed
