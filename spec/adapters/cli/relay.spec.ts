// The usecasecore CLI on Postgres and RabbitMQ: the relay, its start line, its failures and its signals.
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { connect } from 'amqplib';
import { assertQueue } from '../../../adapters/amqp/index.js';
import { KnexAuditStore, KnexOutbox, KnexUnitOfWork } from '../../../adapters/knex/index.js';
import { deleteTopology, isolatedTopology, rabbit } from '../../support/broker.js';
import { expect } from '../../support/helpers.js';
import { MAIN, db, schema, t, url, usePostgres, useTables } from './support.js';

describe('usecasecore CLI', function () {
  this.timeout(30_000);

  describe('on Postgres', () => {
    usePostgres();

    describe('with the tables', () => {
      useTables();

      describe('relay', () => {
        let amqpUrl: string;
        before(async function () {
          const found = await rabbit();
          if (!found) return this.skip();
          amqpUrl = found;
        });

        /** `usecasecore relay …` as a long-running child: its output so far, its first line, and its exit. */
        const startRelay = (args: readonly string[], env: Record<string, string> = {}) => {
          const child = spawn(process.execPath, ['--import', 'tsx', MAIN, 'relay', '--schema', schema, ...args], {
            env: { ...process.env, DATABASE_URL: url, AMQP_URL: amqpUrl, ...env },
            stdio: ['ignore', 'pipe', 'pipe'],
          });
          const output = { stdout: '', stderr: '' };
          const started = new Promise<void>((resolve) => {
            child.stdout.on('data', (chunk: Buffer) => {
              output.stdout += chunk;
              if (output.stdout.includes('\n')) resolve();
            });
          });
          child.stderr.on('data', (chunk: Buffer) => {
            output.stderr += chunk;
          });
          const exited = once(child, 'exit') as Promise<[number | null, string | null]>;
          /** Resolves once the start line is out (its signal handlers are in place), rejects if it exits first. */
          const running = Promise.race([
            started,
            exited.then(([code]) => {
              throw new Error(`the relay exited (${code}) by itself: ${output.stderr}`);
            }),
          ]);
          running.catch(() => undefined); // observed by the case; after a signal an exit is expected
          return { child, output, running, exited };
        };
        const pinged = (id = randomUUID()) => ({
          id,
          kind: 'event' as const,
          type: 'spec.cli.pinged',
          payload: { n: 1 },
          occurredAt: new Date().toISOString(),
          headers: {},
        });

        it('should relay a committed row to RabbitMQ, and exit 0 on SIGTERM', async () => {
          const topology = isolatedTopology(),
            queue = topology.queue('cli');
          const model = await connect(amqpUrl);
          try {
            const channel = await model.createChannel();
            await assertQueue(channel, topology.exchanges, queue, [{ kind: 'event', type: 'spec.cli.pinged' }]);
            const delivered = new Promise<string>((resolve) => {
              void channel.consume(
                queue,
                (msg) => {
                  if (msg) resolve(String(msg.properties.messageId));
                },
                { noAck: true },
              );
            });
            const id = randomUUID();
            await new KnexOutbox(new KnexUnitOfWork(db), t.outbox).add([pinged(id)]);
            const audit = new KnexAuditStore(new KnexUnitOfWork(db), t.audit, t.auditHeads);
            await audit.append({
              id,
              at: new Date().toISOString(),
              tenant: 'acme',
              actor: null,
              type: 'Ping',
              requestId: id,
              outcome: 'ok',
              payload: {},
            });
            const relay = startRelay([
              '--exchanges',
              topology.prefix,
              '--poll',
              '50ms',
              '--purge-sent-after',
              '7d',
              '--reap-idempotency',
              '--purge-jobs-after',
              '30d',
              '--purge-processes-after',
              '90d',
            ]);
            try {
              await relay.running;
              expect(await Promise.race([delivered, relay.running.then(() => relay.exited)])).to.equal(id);
              for (const until = Date.now() + 2_000; Date.now() < until;) {
                if ((await audit.list({ tenant: 'acme' })).length > 0) break;
                await new Promise((resolve) => setTimeout(resolve, 20));
              }
              expect(await audit.list({ tenant: 'acme' }), 'the relay sealed the audit record').to.have.length(1);
            } finally {
              await Promise.race([relay.running, relay.exited]).catch(() => undefined);
              relay.child.kill('SIGTERM');
            }
            expect(await relay.exited, relay.output.stderr).to.deep.equal([0, null]);
            expect(relay.output.stdout.split('\n')[0]).to.equal(
              `usecasecore relay: ${schema}.ucc_outbox → ${topology.prefix}.events at ` +
                `${amqpUrl.replace(/\/\/[^@/]*@/, '//')}, polling every 50ms, sealing ${schema}.ucc_audit every 200ms, ` +
                'retention every 1h: sent rows kept 7d, settled jobs kept 30d, ended processes kept 90d, idempotency reaped',
            );
            expect(relay.output.stdout).to.include('SIGTERM, stopped');
            expect(await db(t.outbox).where({ id }).whereNotNull('sent_at').pluck('id')).to.deep.equal([id]);
          } finally {
            await model.close();
            await deleteTopology(amqpUrl, topology.exchanges, [queue]);
          }
        });

        it('should exit 1 with the reason and the fix, and never say it started, when the broker is unreachable', async () => {
          const relay = startRelay(['--amqp-url', 'amqp://guest:secret@127.0.0.1:1']);
          const [code] = await relay.exited;
          expect(code).to.equal(1);
          expect(relay.output.stdout, 'no start line').to.equal('');
          expect(relay.output.stderr)
            .to.match(/cannot connect to RabbitMQ at amqp:\/\/127\.0\.0\.1:1 \(.*ECONNREFUSED.*\)/)
            .and.include('check --amqp-url or AMQP_URL')
            .and.not.include('secret');
        });

        it('should log failing publishes on stderr once, not once per retry, and keep the rows', async () => {
          // An events exchange of the wrong type: every publish fails as the bus declares its exchanges.
          const topology = isolatedTopology();
          const model = await connect(amqpUrl);
          try {
            const channel = await model.createChannel();
            await channel.assertExchange(topology.exchanges.events, 'fanout', { durable: false, autoDelete: false });
            const id = randomUUID();
            await new KnexOutbox(new KnexUnitOfWork(db), t.outbox).add([pinged(id)]);
            const relay = startRelay(['--exchanges', topology.prefix, '--poll', '20ms']);
            await relay.running;
            const deadline = Date.now() + 10_000;
            while (!relay.output.stderr.includes('publishing failed') && Date.now() < deadline) {
              await new Promise((resolve) => setTimeout(resolve, 20));
            }
            await new Promise((resolve) => setTimeout(resolve, 1_000)); // the relay retries several times meanwhile
            relay.child.kill('SIGTERM');
            expect(await relay.exited, relay.output.stderr).to.deep.equal([0, null]);
            const failures = relay.output.stderr.split('\n').filter((line) => line.includes('publishing failed'));
            expect(failures, relay.output.stderr).to.have.length(1);
            expect(failures[0]).to.match(/PRECONDITION_FAILED|inequivalent arg 'type'/);
            expect(await db(t.outbox).where({ id }).whereNull('sent_at').pluck('id'), 'still unsent').to.deep.equal([
              id,
            ]);
          } finally {
            await model.close();
            await deleteTopology(amqpUrl, topology.exchanges, []);
          }
        });

        it('should exit 1 at once on a second signal', async () => {
          const relay = startRelay(['--poll', '50ms']);
          await relay.running;
          relay.child.kill('SIGTERM');
          relay.child.kill('SIGINT');
          const [code] = await relay.exited;
          expect(code, relay.output.stderr).to.equal(1);
          expect(relay.output.stderr).to.match(/SIG(INT|TERM) again, exiting now/);
        });
      });
    });
  });
});
