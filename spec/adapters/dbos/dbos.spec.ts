// sendInDbos with DBOS Transact on the machine's Postgres, in real processes (child.ts): a workflow of two sends run
// plainly, SIGKILLed after the first send's COMMIT but before DBOS checkpointed that step, with a transient failure
// DBOS retries, and under a workflow id no key could hold. Each effect commits exactly once; the key is DBOS's
// workflow id and step number. Sends outside a workflow, or inside a step, are refused.
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { DBOSClient } from '@dbos-inc/dbos-sdk';
import type { Knex } from 'knex';
import { DBOS_STEP_DEFAULTS, sendInDbos } from '../../../adapters/dbos/index.js';
import { UseCaseError } from '../../../lib/core/index.js';
import { engineStepKey } from '../../../lib/processes/index.js';
import { dropSchema, freshSchema, postgres } from '../../support/db.js';
import { ACCOUNT_HANDLERS, Deposit, expect, wire } from '../../support/helpers.js';
import { spawnChild, type Child } from '../../support/processes.js';
import { KnexShop } from '../../lib/processes/checkout.js';

const CHILD = fileURLToPath(new URL('./child.ts', import.meta.url));

describe('adapters/dbos: sendInDbos outside a workflow', () => {
  it('should refuse with a misuse error that says where to call it, and send nothing', async () => {
    const { mediator, accounts } = wire({ middleware: [], handlers: ACCOUNT_HANDLERS });
    const sent = sendInDbos(mediator, new Deposit({ account: 'a', amount: 1 }));
    await expect(sent).to.be.rejectedWith(UseCaseError, /needs a DBOS workflow: call it from a function registered/);
    await sent.catch((error: UseCaseError) => expect(error.kind).to.equal('misuse'));
    expect(accounts.runs('Deposit')).to.equal(0);
  });

  it('should have DBOS retry a transient failure and an unexpected throw, never a mistake in the code', async () => {
    const retries = (error: unknown) => DBOS_STEP_DEFAULTS.shouldRetry!(error);
    expect(await retries(new UseCaseError('failed', 'dbos:wf:0 failed for now: down'))).to.equal(true);
    expect(await retries(new Error('connection reset'))).to.equal(true);
    expect(await retries(new UseCaseError('no_handler', 'No handler for Hold'))).to.equal(false);
    expect(await retries(new UseCaseError('misuse', 'sendInDbos needs a DBOS workflow'))).to.equal(false);
  });
});

describe('adapters/dbos: sendInDbos as a DBOS step (Postgres, real processes)', function () {
  this.timeout(60_000);
  let db: Knex | undefined;
  let schema: string;
  let client: DBOSClient | undefined;
  const systemDatabase = `ucc_dbos_${randomUUID().replace(/-/g, '').slice(0, 12)}`; // this run's own
  /**
   * DBOS's system database URL. The timeout in `options` is DBOS's default; given in the URL, DBOS does not send its
   * own SET on each new connection, which pg 8.23 warns about (a query while the pool's first one is queued).
   */
  const systemUrl = () => {
    const url = new URL(process.env.DATABASE_URL!);
    url.pathname = `/${systemDatabase}`;
    url.searchParams.set('options', '-c idle_in_transaction_session_timeout=60000');
    return url.href;
  };
  const children: Child[] = [];

  before(async function () {
    db = await postgres();
    if (!db) return this.skip();
    ({ schema } = await freshSchema(db));
    await KnexShop.create(db, schema);
    await db.raw('CREATE DATABASE ??', [systemDatabase]); // the first child's DBOS.launch() adds DBOS's tables
    client = await DBOSClient.create({ systemDatabaseUrl: systemUrl() }); // connects at its first use
  });
  afterEach(async () => {
    await Promise.all(children.splice(0).map((child) => child.kill()));
  });
  after(async () => {
    await client?.destroy();
    if (!db) return;
    await dropSchema(db, schema);
    await db.raw('DROP DATABASE IF EXISTS ?? WITH (FORCE)', [systemDatabase]);
  });

  /** Starts the DBOS app of child.ts on this run's schema and system database. */
  function child(env: Record<string, string>): Child {
    const started = spawnChild(
      CHILD,
      { DATABASE_URL: process.env.DATABASE_URL!, SCHEMA: schema, SYSTEM_DATABASE_URL: systemUrl(), ...env },
      { stdin: 'ignore' },
    );
    children.push(started);
    return started;
  }

  /** Runs a child to its exit (code 0), for what it printed. */
  async function runToExit(env: Record<string, string>): Promise<Child> {
    const started = child(env);
    await started.waitFor(/DONE/);
    expect(await started.exited, 'the child exits on its own').to.equal(0);
    return started;
  }

  /** The effect rows of an order (name → times committed), and every DBOS step key the schema holds, sorted. */
  async function committed(orderId: string) {
    const effects = await db!(`${schema}.effects`).whereLike('name', `%:${orderId}`).orderBy('name');
    const keys = await db!(`${schema}.ucc_idempotency`).whereLike('key', 'dbos:%').pluck('key');
    return {
      effects: Object.fromEntries(effects.map((row: { name: string; n: number }) => [row.name, row.n])),
      keys: keys.sort(),
    };
  }

  /** A fresh workflow id and order for a case. */
  function ids() {
    const orderId = `o-${randomUUID().slice(0, 8)}`;
    return { workflow: `wf-${orderId}`, orderId };
  }

  it('should run both sends once and end with both results', async () => {
    const { workflow, orderId } = ids();
    await runToExit({ MODE: 'start', WORKFLOW: workflow, ORDER: orderId });
    expect(await client!.retrieveWorkflow(workflow).getResult()).to.deep.equal({
      hold: { ok: true, value: { holdId: `h-${orderId}` } },
      capture: { ok: true, value: { captured: `h-${orderId}` } },
    });
    const steps = await client!.listWorkflowSteps(workflow);
    expect(steps?.map((s) => [s.functionID, s.name])).to.deep.equal([
      [0, 'Hold'],
      [1, 'Capture'],
    ]);
    const { effects, keys } = await committed(orderId);
    expect(effects).to.deep.equal({ [`capture:${orderId}`]: 1, [`hold:${orderId}`]: 1 });
    expect(keys.filter((k) => k.startsWith(`dbos:${workflow}:`))).to.deep.equal([
      `dbos:${workflow}:0`,
      `dbos:${workflow}:1`,
    ]);
  });

  it('should commit the first send once when the process dies after its COMMIT, before DBOS recorded it', async () => {
    const { workflow, orderId } = ids();
    const doomed = child({ MODE: 'start', WORKFLOW: workflow, ORDER: orderId, KILL_AT: 'Hold:commit' });
    await doomed.waitFor(/AT Hold:commit/);
    await doomed.kill();
    expect((await committed(orderId)).effects, 'Hold committed').to.deep.equal({ [`hold:${orderId}`]: 1 });
    expect(await client!.listWorkflowSteps(workflow), 'and DBOS has no output for its step').to.deep.equal([]);

    const heir = await runToExit({ MODE: 'recover', WORKFLOW: workflow }); // DBOS.launch() recovers the workflow
    expect(
      heir.all(/CALL (\w+)/g).map((m) => m[1]),
      'Hold ran again as a replay',
    ).to.deep.equal(['Capture']);
    expect(await client!.retrieveWorkflow(workflow).getResult()).to.deep.equal({
      hold: { ok: true, value: { holdId: `h-${orderId}` }, replayed: true },
      capture: { ok: true, value: { captured: `h-${orderId}` } },
    });
    const { effects, keys } = await committed(orderId);
    expect(effects, 'each effect exactly once').to.deep.equal({ [`capture:${orderId}`]: 1, [`hold:${orderId}`]: 1 });
    expect(keys.filter((k) => k.startsWith(`dbos:${workflow}:`))).to.deep.equal([
      `dbos:${workflow}:0`,
      `dbos:${workflow}:1`,
    ]);
  });

  it('should let DBOS retry a transient failure under the same key until the send works', async () => {
    const { workflow, orderId } = ids();
    const run = await runToExit({ MODE: 'start', WORKFLOW: workflow, ORDER: orderId, FLAKY: '2' });
    expect(
      run.all(/CALL Capture (\d)/g).map((m) => m[1]),
      'two unavailable, then it works',
    ).to.deep.equal(['1', '2', '3']);
    const output = (await client!.retrieveWorkflow(workflow).getResult()) as { capture: unknown };
    expect(output.capture).to.deep.equal({ ok: true, value: { captured: `h-${orderId}` } });
    expect((await committed(orderId)).effects).to.deep.equal({ [`capture:${orderId}`]: 1, [`hold:${orderId}`]: 1 });
  });

  it('should send under a workflow id that no idempotency key could hold, keyed by its hash', async () => {
    const { orderId } = ids();
    const workflow = `commande ${orderId} — été`; // a space and non-ASCII: the key format refuses both
    await runToExit({ MODE: 'start', WORKFLOW: workflow, ORDER: orderId });
    const output = (await client!.retrieveWorkflow(workflow).getResult()) as { capture: unknown };
    expect(output.capture).to.deep.equal({ ok: true, value: { captured: `h-${orderId}` } });
    const keys = ['0', '1'].map((stepId) => engineStepKey({ engine: 'dbos', workflowId: workflow, stepId }));
    expect(keys[0]).to.match(/^dbos:sha256:[0-9a-f]{64}$/);
    const { effects, keys: used } = await committed(orderId);
    expect(used).to.include.members(keys);
    expect(effects).to.deep.equal({ [`capture:${orderId}`]: 1, [`hold:${orderId}`]: 1 });
  });

  it('should refuse a send inside a DBOS step, whose sends would share one key', async () => {
    const { workflow, orderId } = ids();
    await runToExit({ MODE: 'in-step', WORKFLOW: workflow, ORDER: orderId });
    const output = (await client!.retrieveWorkflow(workflow).getResult()) as { kind: string; message: string };
    expect(output.kind).to.equal('misuse');
    expect(output.message).to.match(/inside a DBOS step or transaction/);
    expect((await committed(orderId)).effects).to.deep.equal({});
  });
});
