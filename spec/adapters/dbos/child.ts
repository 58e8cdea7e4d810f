// A DBOS app the DBOS spec runs and kills: a workflow of two sends (Hold, then Capture), each writing an effect row in
// its send's transaction, on the schema and DBOS system database it is given. MODE=start starts workflow WORKFLOW for
// order ORDER and waits for its end; MODE=recover only launches DBOS (which recovers the pending workflow) and waits
// for WORKFLOW's end; MODE=in-step runs a workflow that calls sendInDbos inside a step and ends with what it threw.
// KILL_AT=Hold:commit stops for good after Hold's COMMIT, before DBOS checkpoints the step, for the spec's SIGKILL.
// FLAKY=n makes Capture answer `unavailable` n times before it works. Prints `CALL <type> <n>` per handler run.
import 'reflect-metadata';
import { DBOS } from '@dbos-inc/dbos-sdk';
import { inject, injectable } from 'inversify';
import knex from 'knex';
import * as v from 'valibot';
import { sendInDbos } from '../../../adapters/dbos/index.js';
import {
  Command,
  UseCaseError,
  createMediator,
  failure,
  handles,
  ok,
  type Context,
  type Handler,
} from '../../../lib/core/index.js';
import { everyone, recommendedStack } from '../../../middleware/index.js';
import { SHOP, type Shop } from '../../lib/processes/checkout.js';
import { ann, knexContainer } from '../../lib/processes/world.js';

const { DATABASE_URL, SCHEMA, SYSTEM_DATABASE_URL, MODE, WORKFLOW, ORDER = '', KILL_AT, FLAKY, SPEC_LOG } = process.env;

export class Hold extends Command(v.object({ orderId: v.string() }))<{ holdId: string }> {}
export class Capture extends Command(v.object({ orderId: v.string(), holdId: v.string() }))<{ captured: string }> {}

const calls = new Map<string, number>();
/** Counts a handler run in this process and says so. */
function called(type: string): number {
  const n = (calls.get(type) ?? 0) + 1;
  calls.set(type, n);
  process.stdout.write(`CALL ${type} ${n}\n`);
  return n;
}

@handles(Hold)
@injectable()
class HoldHandler implements Handler<Hold> {
  constructor(@inject(SHOP) private readonly shop: Shop) {}
  async handle(cmd: Hold, ctx: Context<Hold>) {
    called('Hold');
    await this.shop.did(`hold:${cmd.orderId}`);
    // Committed, and DBOS has not recorded the step's output yet: the worst moment to die.
    if (KILL_AT === 'Hold:commit')
      ctx.afterCommit(async () => {
        process.stdout.write('AT Hold:commit\n');
        await new Promise(() => undefined);
      });
    return ok({ holdId: `h-${cmd.orderId}` });
  }
}

@handles(Capture)
@injectable()
class CaptureHandler implements Handler<Capture> {
  constructor(@inject(SHOP) private readonly shop: Shop) {}
  async handle(cmd: Capture) {
    if (called('Capture') <= Number(FLAKY ?? 0))
      return failure({ kind: 'unavailable', message: 'the payment provider is down for now' });
    await this.shop.did(`capture:${cmd.orderId}`);
    return ok({ captured: cmd.holdId });
  }
}

const db = knex({ client: 'pg', connection: DATABASE_URL!, pool: { min: 0, max: 4 } });
const mediator = createMediator(knexContainer(db, SCHEMA!, undefined), {
  handlers: [HoldHandler, CaptureHandler],
  middleware: recommendedStack({ rules: [everyone(Hold), everyone(Capture)] }),
});

// Registered the same way in every run: DBOS finds the recovered workflow's function by this name.
const holdAndCapture = DBOS.registerWorkflow(
  async (orderId: string) => {
    const hold = await sendInDbos(mediator, new Hold({ orderId }), ann);
    if (!hold.ok) return { hold };
    const retry = { intervalSeconds: 0.01 }; // the spec's retries need not wait a second
    const capture = await sendInDbos(mediator, new Capture({ orderId, holdId: hold.value.holdId }), {
      ...ann,
      dbos: retry,
    });
    return { hold, capture };
  },
  { name: 'holdAndCapture' },
);

const sendInStep = DBOS.registerWorkflow(
  async (orderId: string) =>
    DBOS.runStep(
      () =>
        sendInDbos(mediator, new Hold({ orderId }), ann).then(
          () => ({ thrown: false }),
          (error: UseCaseError) => ({ thrown: true, kind: error.kind, message: error.message }),
        ),
      { name: 'outer' },
    ),
  { name: 'sendInStep' },
);

DBOS.setConfig({
  name: 'ucc-dbos-spec',
  applicationVersion: 'ucc-dbos-spec', // the same in every run, so a later run recovers what an earlier one left
  systemDatabaseUrl: SYSTEM_DATABASE_URL!,
  runAdminServer: false,
  logLevel: SPEC_LOG ? 'info' : 'error', // retries log warnings; SPEC_LOG=1 shows them
});
await DBOS.launch();
if (MODE === 'start') await (await DBOS.startWorkflow(holdAndCapture, { workflowID: WORKFLOW! })(ORDER)).getResult();
else if (MODE === 'in-step') await (await DBOS.startWorkflow(sendInStep, { workflowID: WORKFLOW! })(ORDER)).getResult();
else await DBOS.getResult(WORKFLOW!, { pollingIntervalMs: 20 }); // recovered by launch(), from its queue
process.stdout.write('DONE\n');
await DBOS.shutdown();
await db.destroy();
